//! Frequency caps: how many touches a contact (or group) may get in a window, counted from
//! the store's touch log so caps hold across playbooks and restarts.

use chrono_tz::Tz;
use sop_clock::{TimeDelta, Timestamp};
use sop_store::{Store, StoreError, TouchKey};

use crate::config::{CapRule, CapWindow};
use crate::error::PolicyError;
use crate::limits::{TouchLimit, TouchPeriod};
use crate::local::{Calendar, period};

/// The window a cap counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    Calendar(Calendar),
    Rolling(TimeDelta),
}

impl Window {
    /// `[from, to)` around `now` in `tz`.
    fn bounds(self, tz: Tz, now: Timestamp) -> (Timestamp, Timestamp) {
        match self {
            Window::Calendar(c) => period(c, tz, now),
            // Touches are stored at millisecond precision; include one recorded at `now`.
            Window::Rolling(d) => (now - d, now + TimeDelta::milliseconds(1)),
        }
    }

    fn label(self) -> String {
        match self {
            Window::Calendar(Calendar::Day) => "day".into(),
            Window::Calendar(Calendar::Week) => "week".into(),
            Window::Calendar(Calendar::Month) => "month".into(),
            Window::Rolling(d) => format!("rolling {}s", d.num_seconds()),
        }
    }
}

/// One cap: at most `max` touches in `bucket` per `window`.
#[derive(Debug, Clone)]
pub(crate) struct Cap {
    pub name: String,
    pub max: u32,
    pub window: Window,
    /// The touch bucket (`TouchKey::category`) it counts.
    pub bucket: String,
}

/// Where a cap stands for one recipient.
#[derive(Debug, Clone)]
pub(crate) struct Count {
    pub name: String,
    pub count: usize,
    pub max: u32,
    pub window: String,
    /// When the next touch is allowed, if this cap blocks one now.
    pub blocked_until: Option<Timestamp>,
}

impl Count {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} {}/{} per {}",
            self.name, self.count, self.max, self.window
        )
    }
}

impl Cap {
    pub(crate) fn from_rule(rule: &CapRule) -> Result<Cap, PolicyError> {
        let problem = |problem: &str| PolicyError::Cap {
            name: rule.name.clone(),
            problem: problem.into(),
        };
        if rule.max == 0 {
            return Err(problem(
                "max must be at least 1 (remove the category's playbooks instead)",
            ));
        }
        let window = match rule.window {
            CapWindow::Day => Window::Calendar(Calendar::Day),
            CapWindow::Week => Window::Calendar(Calendar::Week),
            CapWindow::Month => Window::Calendar(Calendar::Month),
            CapWindow::Rolling(d) if d.as_seconds() == 0 => {
                return Err(problem("a rolling window must be longer than 0s"));
            }
            CapWindow::Rolling(d) => Window::Rolling(rolling(d.as_seconds())),
        };
        Ok(Cap {
            name: rule.name.clone(),
            max: rule.max,
            window,
            bucket: category_bucket(rule.category).into(),
        })
    }

    pub(crate) fn from_touch_limit(plugin: &str, limit: &TouchLimit) -> Cap {
        let window = match limit.period {
            TouchPeriod::Day => Window::Calendar(Calendar::Day),
            TouchPeriod::Week => Window::Calendar(Calendar::Week),
            TouchPeriod::Month => Window::Calendar(Calendar::Month),
            TouchPeriod::Rolling(s) => Window::Rolling(rolling(s)),
        };
        Cap {
            name: format!("{plugin}.{}", limit.name),
            max: limit.max,
            window,
            bucket: platform_bucket(plugin, &limit.name),
        }
    }

    /// Counts the touches in the window around `now`.
    pub(crate) fn count(
        &self,
        store: &dyn Store,
        key: &TouchKey,
        tz: Tz,
        now: Timestamp,
    ) -> Result<Count, StoreError> {
        let (from, to) = self.window.bounds(tz, now);
        let touches = store.touches(key, from, to)?;
        let n = touches.len();
        let blocked_until = (n >= self.max as usize).then(|| match self.window {
            Window::Calendar(_) => to,
            // The window frees a slot when the touch that must leave it does.
            Window::Rolling(d) => {
                let leaving = touches[n - self.max as usize];
                (leaving + d + TimeDelta::milliseconds(1)).max(now + TimeDelta::milliseconds(1))
            }
        });
        Ok(Count {
            name: self.name.clone(),
            count: n,
            max: self.max,
            window: self.window.label(),
            blocked_until,
        })
    }
}

fn rolling(seconds: u64) -> TimeDelta {
    TimeDelta::seconds(
        i64::try_from(seconds)
            .unwrap_or(i64::MAX / 1000)
            .min(i64::MAX / 1000),
    )
}

/// The touch bucket of a message category.
pub(crate) fn category_bucket(category: sop_dsl::model::Category) -> &'static str {
    match category {
        sop_dsl::model::Category::Marketing => "marketing",
        sop_dsl::model::Category::Service => "service",
    }
}

/// The touch bucket of a plugin's own touch limit, e.g. `wecom.mass_send_per_contact`.
pub(crate) fn platform_bucket(plugin: &str, limit: &str) -> String {
    format!("{plugin}.{limit}")
}
