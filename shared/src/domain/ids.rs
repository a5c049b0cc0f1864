//! Typed identifiers. Ids we mint carry a short prefix and a ULID (`ord_01J...`), so an id
//! in a log line says what it names; ids that come from outside are validated on the way in.

use std::fmt;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Why a string was refused as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be {rule}")]
pub struct InvalidId {
    /// Which id was being parsed, for example "order id".
    pub kind: &'static str,
    /// The rule it broke, as a phrase that completes "must be ...".
    pub rule: &'static str,
}

/// Accepts the characters we allow in any id: ASCII letters, digits, `-`, `_`, `.`, `:`.
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

fn check_token(value: &str, kind: &'static str, max_len: usize) -> Result<(), InvalidId> {
    let rule = "1 to 64 characters of letters, digits, '-', '_', '.' or ':'";
    if value.is_empty() || value.len() > max_len || !value.chars().all(is_id_char) {
        return Err(InvalidId { kind, rule });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an id received from outside.
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check_token(&value, $kind, 64)?;
                Ok(Self(value))
            }

            /// The id as it is stored and shown.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

macro_rules! minted_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        string_id!($(#[$meta])* $name, $kind);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// Mints a new id from a ULID handed out by the injected id generator.
            pub fn from_ulid(ulid: Ulid) -> Self {
                Self(format!("{}{}", $prefix, ulid.to_string().to_ascii_lowercase()))
            }
        }
    };
}

minted_id!(
    /// A tenant: one B2B platform using the deployment. Comes from the API key, nowhere else.
    TenantId,
    "tenant id",
    "ten_"
);
minted_id!(
    /// An order placed through `POST /v1/orders`.
    OrderId,
    "order id",
    "ord_"
);
minted_id!(
    /// One eSIM profile we sold; stable across provider references and reissues.
    EsimId,
    "eSIM id",
    "esm_"
);
minted_id!(
    /// The public half of an API key, used to list and revoke keys without showing them.
    ApiKeyId,
    "API key id",
    "key_"
);
string_id!(
    /// The platform's own id of its end customer; opaque to us.
    CustomerId,
    "customer id"
);
string_id!(
    /// A catalogue plan id, stable across catalogue refreshes.
    PlanId,
    "plan id"
);
string_id!(
    /// A wholesale provider this deployment talks to, for example `airalo`.
    ProviderId,
    "provider id"
);

/// An ICCID: the number of a SIM profile. Providers' sample data breaks the format rules, so
/// [`Iccid::parse`] only insists on digits and a sane length; [`Iccid::looks_valid`] checks
/// the prefix and Luhn digit for a warning.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Iccid(String);

impl Iccid {
    /// Accepts 10 to 22 ASCII digits.
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
        let value = value.into();
        let digits = value.len() >= 10 && value.len() <= 22;
        if !digits || !value.chars().all(|c| c.is_ascii_digit()) {
            return Err(InvalidId {
                kind: "ICCID",
                rule: "10 to 22 digits",
            });
        }
        Ok(Self(value))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the ICCID has 19 or 20 digits, starts with 89 and ends in a valid Luhn
    /// check digit, as ITU-T E.118 says it should.
    pub fn looks_valid(&self) -> bool {
        let len_ok = matches!(self.0.len(), 19 | 20);
        len_ok && self.0.starts_with("89") && luhn_ok(&self.0)
    }
}

fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl TryFrom<String> for Iccid {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Iccid> for String {
    fn from(id: Iccid) -> String {
        id.0
    }
}

impl fmt::Display for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_carry_their_prefix_and_parse_back() {
        let ulid = Ulid::from_parts(1_700_000_000_000, 42);

        let id = OrderId::from_ulid(ulid);

        assert!(id.as_str().starts_with("ord_"));
        assert_eq!(OrderId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn rejects_ids_with_spaces_or_empty() {
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("a b").is_err());
        assert!(CustomerId::parse("x".repeat(65)).is_err());
        assert!(CustomerId::parse("cus_42").is_ok());
    }

    #[test]
    fn iccid_accepts_digits_and_flags_bad_luhn() {
        let good = Iccid::parse("8988247000100000000").expect("digits");
        let bad_luhn = Iccid::parse("8988247000100000001").expect("digits");

        assert!(good.looks_valid());
        assert!(!bad_luhn.looks_valid());
        assert!(Iccid::parse("89abc").is_err());
    }
}
