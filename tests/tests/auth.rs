//! Tenant authentication on every `/v1` route, through the local stack's one base URL.

use integration_tests::{admin, stack};

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn status(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    key: Option<&str>,
) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client
        .request(method, url)
        .header("idempotency-key", "k1")
        .body("{}");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn every_v1_route_refuses_missing_malformed_unknown_and_revoked_keys() {
    let (stack, aws) = stack(|o| {
        o.background = false;
        o.extra_environment
            .insert("AUTH_CACHE_SECONDS".to_owned(), "0".to_owned());
    })
    .await;
    let admin = admin(&aws, &stack);
    let (tenant, revoked) = admin.create_tenant("Revoked Ltd").await.expect("tenant");
    admin
        .revoke_key(&tenant.tenant_id, &revoked.key_id)
        .await
        .expect("revoked");
    let unknown = format!("esk_{}_{}", "0".repeat(26), "A".repeat(43));
    let client = reqwest::Client::new();
    let routes: Vec<_> = stack
        .spec
        .routes
        .iter()
        .filter(|r| r.path.starts_with("/v1/"))
        .collect();
    assert!(
        routes.len() >= 12,
        "the contract has at least 12 /v1 routes"
    );

    for route in routes {
        let url = format!("{}{}", stack.base_url, concrete(&route.path));
        for key in [
            None,
            Some("not-a-key"),
            Some(unknown.as_str()),
            Some(revoked.plaintext.as_str()),
        ] {
            let (status, body) = status(&client, &route.method, &url, key).await;

            assert_eq!(status, 401, "{} {} with {key:?}", route.method, route.path);
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(
                body["error"]["support_reference"]
                    .as_str()
                    .is_some_and(|r| !r.is_empty())
            );
        }
    }
}

#[tokio::test]
async fn a_key_opens_exactly_its_own_tenant_until_revoked() {
    let (stack, aws) = stack(|o| {
        o.background = false;
        o.extra_environment
            .insert("AUTH_CACHE_SECONDS".to_owned(), "0".to_owned());
    })
    .await;
    let admin = admin(&aws, &stack);
    let (acme, acme_key) = admin.create_tenant("Acme Travel").await.expect("tenant");
    let (_, other_key) = admin.create_tenant("Other").await.expect("tenant");
    let second = admin.create_key(&acme.tenant_id).await.expect("second key");
    let client = reqwest::Client::new();
    let url = format!("{}/v1/tenant", stack.base_url);

    let (first_status, first) = status(&client, "GET", &url, Some(&acme_key.plaintext)).await;
    let (_, second_body) = status(&client, "GET", &url, Some(&second.plaintext)).await;
    let (_, other) = status(&client, "GET", &url, Some(&other_key.plaintext)).await;
    admin
        .revoke_key(&acme.tenant_id, &acme_key.key_id)
        .await
        .expect("revoke");
    let (after_status, _) = status(&client, "GET", &url, Some(&acme_key.plaintext)).await;
    let (still_status, _) = status(&client, "GET", &url, Some(&second.plaintext)).await;

    assert_eq!(first_status, 200);
    assert_eq!(first["tenant_id"], acme.tenant_id.as_str());
    assert_eq!(second_body["tenant_id"], acme.tenant_id.as_str());
    assert_ne!(other["tenant_id"], acme.tenant_id.as_str());
    assert_eq!(after_status, 401);
    assert_eq!(still_status, 200);
    let keys = admin.list_keys(&acme.tenant_id).await.expect("keys");
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter()
            .all(|k| k.key_hash.len() == 64 && !k.key_hash.contains("esk_"))
    );
}

#[tokio::test]
async fn unknown_routes_get_api_gateway_404_and_bad_methods_never_reach_a_handler() {
    let (stack, _aws) = stack(|o| o.background = false).await;
    let client = reqwest::Client::new();

    let (missing, body) = status(
        &client,
        "GET",
        &format!("{}/v2/nothing", stack.base_url),
        None,
    )
    .await;
    let (wrong_method, _) = status(
        &client,
        "DELETE",
        &format!("{}/v1/plans", stack.base_url),
        None,
    )
    .await;

    assert_eq!(missing, 404);
    assert_eq!(body["message"], "Not Found");
    assert_eq!(wrong_method, 404);
}
