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

#[cfg(test)]
mod tests {
    use crate::config::load_daemon_config;

    fn load(table: &str) -> Result<crate::config::DaemonConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), "").unwrap();
        let path = dir.path().join("plazo.toml");
        std::fs::write(
            &path,
            format!("data_dir = \"{}\"\n{table}", dir.path().join("d").display()),
        )
        .unwrap();
        load_daemon_config(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn prices_are_checked_with_their_location() {
        let ok =
            load("[simulation]\ncurrency = \"COP\"\nprices = { sms = \"40\", email = \"0\" }\n")
                .unwrap();
        assert_eq!(ok.simulation.prices["sms"], rust_decimal::Decimal::from(40));
        assert_eq!(ok.simulation.max_days, 92);
        assert_eq!(load("").unwrap().simulation.currency, "USD");
        for (table, says) in [
            (
                "[simulation]\nprices = { fax = \"1\" }\n",
                "not a channel kind",
            ),
            ("[simulation]\nprices = { sms = \"-1\" }\n", "out of range"),
            ("[simulation]\ncurrency = \"XXQ\"\n", "ISO 4217"),
            ("[simulation]\nmax_days = 0\n", "out of range"),
            ("[simulation]\nmax_day = 3\n", "max_day"),
        ] {
            let e = load(table).unwrap_err();
            assert!(
                e.contains(says) && e.contains("plazo.toml:"),
                "{table}: {e}"
            );
        }
    }
}
