//! Money as Shopify sends it (decimal strings such as `"199.00"` beside an ISO 4217 currency
//! code) read into integer minor units of that currency, so sums are exact and two currencies
//! are never added up by accident.

use serde::{Deserialize, Serialize};

/// ISO 4217 currencies whose minor unit is not the hundredth: those without one, and those
/// with thousandths (ISO 4217, list one, column "minor unit").
const ZERO_DECIMALS: [&str; 17] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const THREE_DECIMALS: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// An amount in a currency's minor units.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents for USD; yen for JPY).
    pub minor: i64,
    /// ISO 4217 code, upper case.
    pub currency: String,
}

/// Why an amount cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The currency is not a three-letter code.
    #[error("currency {0:?} is not an ISO 4217 code (three letters)")]
    Currency(String),
    /// The amount is not a decimal number.
    #[error("amount {0:?} is not a decimal number such as \"199.00\"")]
    Amount(String),
    /// The amount has more decimals than the currency's minor unit.
    #[error("amount {amount:?} has more decimals than {currency} has ({decimals})")]
    Precision {
        /// The amount.
        amount: String,
        /// The currency.
        currency: String,
        /// Its decimals.
        decimals: u32,
    },
    /// The amount does not fit.
    #[error("amount {0:?} is out of range")]
    Range(String),
    /// Two currencies in one sum.
    #[error("cannot add {0} to {1}")]
    Mixed(String, String),
}

/// The decimals of a currency's minor unit.
pub fn decimals(currency: &str) -> u32 {
    if ZERO_DECIMALS.contains(&currency) {
        0
    } else if THREE_DECIMALS.contains(&currency) {
        3
    } else {
        2
    }
}

/// `amount` (a decimal string, optionally signed, with at most the currency's decimals;
/// trailing zeros beyond them are fine) in minor units of `currency`.
pub fn minor_units(amount: &str, currency: &str) -> Result<Money, MoneyError> {
    let code = currency.trim().to_ascii_uppercase();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(MoneyError::Currency(currency.to_owned()));
    }
    let text = amount.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let is_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !is_digits(whole) || !is_digits(fraction) || (digits.ends_with('.')) {
        return Err(MoneyError::Amount(amount.to_owned()));
    }
    let places = decimals(&code);
    let significant = fraction.trim_end_matches('0');
    if significant.len() > places as usize {
        return Err(MoneyError::Precision {
            amount: amount.to_owned(),
            currency: code,
            decimals: places,
        });
    }
    let mut padded = significant.to_owned();
    while padded.len() < places as usize {
        padded.push('0');
    }
    let range = || MoneyError::Range(amount.to_owned());
    let whole: i64 = whole.parse().map_err(|_| range())?;
    let part: i64 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| range())?
    };
    let minor = whole
        .checked_mul(10_i64.pow(places))
        .and_then(|w| w.checked_add(part))
        .ok_or_else(range)?;
    Ok(Money {
        minor: if negative { -minor } else { minor },
        currency: code,
    })
}

impl Money {
    /// The sum of two amounts of one currency.
    pub fn plus(&self, other: &Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::Mixed(
                other.currency.clone(),
                self.currency.clone(),
            ));
        }
        Ok(Money {
            minor: self
                .minor
                .checked_add(other.minor)
                .ok_or_else(|| MoneyError::Range(format!("{} + {}", self.minor, other.minor)))?,
            currency: self.currency.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_minor_units_of_their_currency() {
        let m = |a: &str, c: &str| minor_units(a, c).map(|m| m.minor);
        assert_eq!(m("199.00", "USD"), Ok(19_900));
        assert_eq!(m("199", "usd"), Ok(19_900));
        assert_eq!(m("0.5", "EUR"), Ok(50));
        assert_eq!(m("-30.00", "USD"), Ok(-3_000));
        assert_eq!(m("1500", "JPY"), Ok(1_500));
        assert_eq!(m("1500.00", "JPY"), Ok(1_500));
        assert_eq!(m("1.234", "KWD"), Ok(1_234));
        assert!(matches!(m("1.5", "JPY"), Err(MoneyError::Precision { .. })));
        assert!(matches!(
            m("1.005", "USD"),
            Err(MoneyError::Precision { .. })
        ));
        for bad in ["", "abc", "1,00", "1.", ".5", "1.2.3", "+1", "1e3"] {
            assert!(
                matches!(m(bad, "USD"), Err(MoneyError::Amount(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(m("1", "US"), Err(MoneyError::Currency(_))));
        assert!(matches!(
            m("99999999999999999999", "USD"),
            Err(MoneyError::Range(_))
        ));
    }

    #[test]
    fn two_currencies_never_add_up() {
        let usd = minor_units("10.00", "USD").unwrap_or_else(|e| panic!("{e}"));
        let cad = minor_units("10.00", "CAD").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(usd.plus(&usd).map(|m| m.minor), Ok(2_000));
        assert_eq!(
            usd.plus(&cad),
            Err(MoneyError::Mixed("CAD".into(), "USD".into()))
        );
    }
}
