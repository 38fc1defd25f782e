//! `[simulation]`: what `plazo simulate` (and `POST /v1/simulate`) needs beyond the portfolio
//! and the policies: the unit price of a message per channel, for the cost estimate, and the
//! longest span one simulation may cover.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Deserialize;

/// Settings of policy simulations (`[simulation]`); every key optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationConfig {
    /// ISO 4217 currency the prices are in. Default `"USD"`.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Price of one message per channel kind (`email`, `sms`, `whatsapp`, `webhook`), as a
    /// decimal string: `prices = { sms = "0.0079", whatsapp = "0.0147" }`. A kind not listed
    /// is counted at zero.
    #[serde(default)]
    pub prices: BTreeMap<String, Decimal>,
    /// Longest simulation, in days (1 to 366). Default 92.
    #[serde(default = "default_max_days")]
    pub max_days: u32,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            currency: default_currency(),
            prices: BTreeMap::new(),
            max_days: default_max_days(),
        }
    }
}

fn default_currency() -> String {
    "USD".to_owned()
}

fn default_max_days() -> u32 {
    92
}
