//! Shared emulator state handed to every handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sop_clock::{Clock, VirtualClock};
use wecom_crypto::Crypto;

use crate::config::Config;
use crate::counters::Counters;
use crate::delivery::{CallbackLog, Deliverer};
use crate::douyin::DouyinState;
use crate::events::Order;
use crate::faults::FaultState;
use crate::ledger::Ledger;
use crate::rng::Rng;
use crate::wecom::WecomState;
use crate::world::World;

/// Everything mutable, behind one lock: handlers hold it for microseconds.
#[derive(Debug)]
pub struct State {
    /// The population.
    pub world: World,
    /// Tokens, limits, welcome codes, tasks.
    pub wecom: WecomState,
    /// Douyin tokens, windows, authorisations.
    pub douyin: DouyinState,
    /// Messages delivered to people.
    pub ledger: Ledger,
    /// Callbacks and webhooks sent to the daemon.
    pub callbacks: CallbackLog,
    /// Orders placed by customers.
    pub orders: Vec<Order>,
    /// The demo shop: members, points, paid orders.
    pub shop: crate::shop::ShopState,
    /// Counters.
    pub counters: Counters,
    /// Ids, nonces and traffic choices.
    pub rng: Rng,
}

/// Cheap handle to the running emulator.
#[derive(Clone, Debug)]
pub struct App(Arc<Shared>);

/// The parts of [`App`].
#[derive(Debug)]
pub struct Shared {
    /// Configuration at start (faults and limits may change at run time elsewhere).
    pub config: Config,
    /// The clock everything reads.
    pub clock: Arc<dyn Clock>,
    /// Set when the clock is virtual, so `/_emulator/clock` can move it.
    pub manual_clock: Option<VirtualClock>,
    /// Callback crypto of the configured WeCom app (the first corp's receive id).
    pub crypto: Crypto,
    /// Callback crypto per corp (index 0 = `crypto`'s corp), for `--corps N`.
    pub corp_crypto: Vec<Crypto>,
    /// Mutable state.
    pub state: Mutex<State>,
    /// Fault injection settings.
    pub faults: Mutex<FaultState>,
    /// Sends callbacks and webhooks.
    pub deliverer: Deliverer,
    /// Traffic rate in events per second, as `f64` bits.
    traffic_rate: AtomicU64,
}

impl App {
    /// Build the emulator state for `config`.
    pub fn new(
        config: Config,
        clock: Arc<dyn Clock>,
        manual_clock: Option<VirtualClock>,
    ) -> Result<Self, String> {
        let w = &config.wecom;
        let crypto = Crypto::new(&w.callback_token, &w.encoding_aes_key, &w.corp_id)
            .map_err(|e| format!("wecom callback configuration: {e}"))?;
        let corp_crypto = w
            .corp_ids()
            .iter()
            .map(|id| Crypto::new(&w.callback_token, &w.encoding_aes_key, id))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("wecom callback configuration: {e}"))?;
        let now = unix_ms(clock.as_ref());
        let state = State {
            world: World::generate(&config.world, config.seed, now),
            wecom: WecomState::new(&config.wecom),
            douyin: DouyinState::new(&config.douyin),
            ledger: Ledger::default(),
            callbacks: CallbackLog::with_capacity(config.delivery.keep_records),
            orders: Vec::new(),
            shop: crate::shop::ShopState::default(),
            counters: Counters::default(),
            rng: Rng::new(config.seed.wrapping_add(0x5eed)),
        };
        let faults = FaultState::new(config.faults.clone(), config.seed);
        let deliverer = Deliverer::new();
        let traffic_rate = AtomicU64::new(config.traffic.rate_per_s.max(0.0).to_bits());
        Ok(Self(Arc::new(Shared {
            config,
            clock,
            manual_clock,
            crypto,
            corp_crypto,
            state: Mutex::new(state),
            faults: Mutex::new(faults),
            deliverer,
            traffic_rate,
        })))
    }

    /// The shared parts.
    pub fn shared(&self) -> &Shared {
        &self.0
    }

    /// Configuration at start.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Current emulator time, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        unix_ms(self.0.clock.as_ref())
    }

    /// Lock the state; a panic elsewhere must not take the emulator down with it.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Traffic rate, events per second.
    pub fn traffic_rate(&self) -> f64 {
        f64::from_bits(self.0.traffic_rate.load(Ordering::Relaxed))
    }

    /// Change the traffic rate (0 pauses the generator).
    pub fn set_traffic_rate(&self, per_s: f64) {
        let per_s = if per_s.is_finite() {
            per_s.max(0.0)
        } else {
            0.0
        };
        self.0
            .traffic_rate
            .store(per_s.to_bits(), Ordering::Relaxed);
    }

    /// Lock the fault settings.
    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        self.0.faults.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The clock's time as unsigned Unix milliseconds (the platforms know nothing before 1970).
fn unix_ms(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.now_ms()).unwrap_or(0)
}
