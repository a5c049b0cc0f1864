//! Route matching by method and path template, as API Gateway matches `{name}` segments.

use std::collections::HashMap;

use http::Method;

use crate::domain::{DomainError, ErrorCode};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Needs a tenant API key.
    Tenant,
    /// Authenticated another way (provider webhooks verify their own signatures).
    Public,
}

/// The `{name}` segments of a matched path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams(HashMap<String, String>);

impl PathParams {
    /// A captured segment.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[derive(Debug)]
struct Route<R> {
    method: Method,
    segments: Vec<String>,
    access: Access,
    route: R,
}

/// A function's routes.
#[derive(Debug)]
pub struct RouteTable<R> {
    routes: Vec<Route<R>>,
}

impl<R: Copy> Default for RouteTable<R> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/').split('/').filter(|s| !s.is_empty())
}

impl<R: Copy> RouteTable<R> {
    /// Adds a route that needs a tenant API key.
    pub fn tenant(self, method: Method, template: &str, route: R) -> Self {
        self.add(method, template, Access::Tenant, route)
    }

    /// Adds a route that authenticates its callers itself.
    pub fn public(self, method: Method, template: &str, route: R) -> Self {
        self.add(method, template, Access::Public, route)
    }

    fn add(mut self, method: Method, template: &str, access: Access, route: R) -> Self {
        let segments = split(template).map(str::to_owned).collect();
        self.routes.push(Route {
            method,
            segments,
            access,
            route,
        });
        self
    }

    /// Finds the route for a request. An unknown path is a 404 and a known path with the
    /// wrong method a 400 naming the methods it takes.
    pub fn find(
        &self,
        method: &Method,
        path: &str,
    ) -> Result<(R, Access, PathParams), DomainError> {
        let parts: Vec<&str> = split(path).collect();
        let mut allowed = Vec::new();
        for candidate in &self.routes {
            let Some(params) = match_segments(&candidate.segments, &parts) else {
                continue;
            };
            if candidate.method == method {
                return Ok((candidate.route, candidate.access, params));
            }
            allowed.push(candidate.method.as_str());
        }
        if allowed.is_empty() {
            Err(DomainError::with_message(
                ErrorCode::NotFound,
                format!("No route for {path}."),
            ))
        } else {
            Err(DomainError::invalid(format!(
                "{path} does not accept {method}; use {}.",
                allowed.join(" or ")
            )))
        }
    }
}

fn match_segments(template: &[String], parts: &[&str]) -> Option<PathParams> {
    if template.len() != parts.len() {
        return None;
    }
    let mut params = HashMap::new();
    for (pattern, part) in template.iter().zip(parts) {
        match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => {
                params.insert(name.to_owned(), (*part).to_owned());
            }
            None if pattern == part => {}
            None => return None,
        }
    }
    Some(PathParams(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum R {
        Plans,
        Plan,
        Qr,
    }

    fn table() -> RouteTable<R> {
        RouteTable::default()
            .tenant(Method::GET, "/v1/plans", R::Plans)
            .tenant(Method::GET, "/v1/plans/{plan_id}", R::Plan)
            .tenant(Method::GET, "/v1/esims/{esim_id}/qr.svg", R::Qr)
    }

    #[test]
    fn matches_literal_and_templated_segments() {
        let (route, _, params) = table()
            .find(&Method::GET, "/v1/plans/jp-1gb")
            .expect("match");
        let (qr, _, qr_params) = table()
            .find(&Method::GET, "/v1/esims/esm_1/qr.svg")
            .expect("m");

        assert_eq!(route, R::Plan);
        assert_eq!(params.get("plan_id"), Some("jp-1gb"));
        assert_eq!(qr, R::Qr);
        assert_eq!(qr_params.get("esim_id"), Some("esm_1"));
        assert_eq!(
            table().find(&Method::GET, "/v1/plans/").expect("m").0,
            R::Plans
        );
    }

    #[test]
    fn unknown_paths_are_not_found_and_wrong_methods_are_bad_requests() {
        let missing = table()
            .find(&Method::GET, "/v1/nothing")
            .expect_err("no route");
        let wrong = table()
            .find(&Method::DELETE, "/v1/plans")
            .expect_err("wrong method");

        assert_eq!(missing.code, ErrorCode::NotFound);
        assert_eq!(wrong.code, ErrorCode::InvalidRequest);
        assert!(wrong.message.contains("GET"));
    }
}
