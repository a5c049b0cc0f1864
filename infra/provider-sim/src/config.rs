//! Start-up configuration of the simulator: port, seed, time scale, partner credentials and the
//! opening balance of each simulated partner account.

/// Airalo partner credentials the simulator accepts on `POST /airalo/v2/token`. The client
/// secret is also the default key of the `airalo-signature` webhook HMAC.
#[derive(Clone, PartialEq, Eq)]
pub struct AiraloCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for AiraloCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiraloCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// eSIM Access credentials: the `RT-AccessCode` header value and the HMAC secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct EsimAccessCredentials {
    pub access_code: String,
    pub secret_key: String,
}

impl std::fmt::Debug for EsimAccessCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsimAccessCredentials")
            .field("access_code", &self.access_code)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Everything [`crate::spawn`] needs. `Default` gives a free port, seed 42, real-time speed and
/// well-known test credentials.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Seed of the catalogue and of every random decision (ids, injected errors, failures).
    pub seed: u64,
    /// Simulated seconds per real second (60 makes a simulated minute last one real second).
    pub time_scale: f64,
    pub airalo: AiraloCredentials,
    pub esim_access: EsimAccessCredentials,
    /// Opening balance of each simulated partner account, in US cents.
    pub initial_balance_cents: i64,
}

/// Default Airalo client id accepted by the simulator.
pub const DEFAULT_AIRALO_CLIENT_ID: &str = "sim-airalo-client";
/// Default Airalo client secret accepted by the simulator.
pub const DEFAULT_AIRALO_CLIENT_SECRET: &str = "sim-airalo-secret";
/// Default eSIM Access access code accepted by the simulator.
pub const DEFAULT_ESIM_ACCESS_CODE: &str = "sim-esimaccess-code";
/// Default eSIM Access secret key accepted by the simulator.
pub const DEFAULT_ESIM_ACCESS_SECRET: &str = "sim-esimaccess-secret";

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            seed: 42,
            time_scale: 1.0,
            airalo: AiraloCredentials {
                client_id: DEFAULT_AIRALO_CLIENT_ID.to_owned(),
                client_secret: DEFAULT_AIRALO_CLIENT_SECRET.to_owned(),
            },
            esim_access: EsimAccessCredentials {
                access_code: DEFAULT_ESIM_ACCESS_CODE.to_owned(),
                secret_key: DEFAULT_ESIM_ACCESS_SECRET.to_owned(),
            },
            initial_balance_cents: 10_000_000,
        }
    }
}

impl SimConfig {
    /// Same configuration on another port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Same configuration with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Same configuration with another time scale.
    pub fn with_time_scale(mut self, time_scale: f64) -> Self {
        self.time_scale = time_scale;
        self
    }
}
