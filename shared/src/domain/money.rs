//! Money as integer minor units with an ISO 4217 currency. Never a float: a price is what a
//! customer is charged, and it must add up to the cent in the ledger.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an amount or currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not three upper-case ASCII letters.
    #[error("currency must be a three-letter ISO 4217 code such as USD, got {0:?}")]
    InvalidCurrency(String),
    /// Two amounts in different currencies were combined.
    #[error("cannot combine amounts in {left} and {right}")]
    CurrencyMismatch {
        /// The currency on the left-hand side.
        left: Currency,
        /// The currency on the right-hand side.
        right: Currency,
    },
    /// The result does not fit in 64 bits of minor units.
    #[error("amount out of range")]
    Overflow,
}

/// An ISO 4217 currency code, stored as its three upper-case letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// United States dollar.
    pub const USD: Currency = Currency(*b"USD");
    /// Euro.
    pub const EUR: Currency = Currency(*b"EUR");

    /// Parses a three-letter code; lower case is accepted and upper-cased.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let upper = code.to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::InvalidCurrency(code.to_owned()));
        }
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    /// The code, for example `"USD"`.
    pub fn code(&self) -> &str {
        // The bytes are checked ASCII upper-case letters at construction, so the fallback,
        // ISO 4217's code for "no currency", is never reached.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// How many decimal places the currency's minor unit has (ISO 4217 exponent).
    pub fn minor_unit_exponent(&self) -> u32 {
        match self.code() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money: integer minor units (cents for USD, yen for JPY) and a currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in the currency's minor unit.
    pub amount_minor: i64,
    /// The ISO 4217 currency.
    pub currency: Currency,
}

impl Money {
    /// An amount in minor units.
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    /// Zero in a currency.
    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// Adds two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(sum, self.currency))
    }

    /// Multiplies by a quantity.
    pub fn checked_mul(self, quantity: u32) -> Result<Money, MoneyError> {
        let product = self
            .amount_minor
            .checked_mul(i64::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(product, self.currency))
    }

    /// Converts a decimal amount in major units given as text (for example a provider's
    /// `"4.50"`) into minor units, refusing more decimals than the currency has.
    pub fn from_decimal_str(text: &str, currency: Currency) -> Option<Money> {
        let exponent = currency.minor_unit_exponent() as usize;
        let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > exponent || whole.is_empty() {
            return None;
        }
        let negative = whole.starts_with('-');
        let whole: i64 = whole.trim_start_matches('-').parse().ok()?;
        let mut frac_value: i64 = 0;
        for (i, c) in fraction.chars().enumerate() {
            let digit = i64::from(c.to_digit(10)?);
            frac_value += digit * 10_i64.pow((exponent - i - 1) as u32);
        }
        let scale = 10_i64.pow(exponent as u32);
        let magnitude = whole.checked_mul(scale)?.checked_add(frac_value)?;
        Some(Money::new(
            if negative { -magnitude } else { magnitude },
            currency,
        ))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.minor_unit_exponent();
        if exponent == 0 {
            return write!(f, "{} {}", self.amount_minor, self.currency);
        }
        let scale = 10_i64.pow(exponent);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        let width = exponent as usize;
        let (major, minor) = (abs / scale as u64, abs % scale as u64);
        write!(f, "{sign}{major}.{minor:0width$} {}", self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_prices_exactly() {
        let usd = Currency::USD;
        let jpy = Currency::parse("jpy").expect("valid code");

        assert_eq!(
            Money::from_decimal_str("4.50", usd),
            Some(Money::new(450, usd))
        );
        assert_eq!(
            Money::from_decimal_str("13", usd),
            Some(Money::new(1300, usd))
        );
        assert_eq!(
            Money::from_decimal_str("0.1", usd),
            Some(Money::new(10, usd))
        );
        assert_eq!(Money::from_decimal_str("0.125", usd), None);
        assert_eq!(
            Money::from_decimal_str("500", jpy),
            Some(Money::new(500, jpy))
        );
        assert_eq!(Money::from_decimal_str("5.5", jpy), None);
    }

    #[test]
    fn refuses_to_add_different_currencies() {
        let a = Money::new(100, Currency::USD);
        let b = Money::new(100, Currency::EUR);

        assert!(matches!(
            a.checked_add(b),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(a.checked_add(a), Ok(Money::new(200, Currency::USD)));
    }

    #[test]
    fn displays_with_the_currency_exponent() {
        assert_eq!(Money::new(1999, Currency::USD).to_string(), "19.99 USD");
        assert_eq!(Money::new(-5, Currency::USD).to_string(), "-0.05 USD");
        let jpy = Currency::parse("JPY").expect("valid code");
        assert_eq!(Money::new(800, jpy).to_string(), "800 JPY");
    }

    #[test]
    fn rejects_malformed_currency_codes() {
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U5D").is_err());
    }
}
