//! Stable diagnostic codes. Each code has a page in `docs/errors/SOPxxxx.md`; a test checks that.
//! Codes are never renumbered or reused: retire a code by leaving it unused.

use serde::Serialize;

use crate::diagnostic::Severity;

macro_rules! codes {
    ($($variant:ident = $num:literal, $severity:ident, $title:literal;)*) => {
        /// A diagnostic code such as `SOP0010`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(#[doc = $title] $variant,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The number, e.g. 10 for `SOP0010`.
            pub fn number(self) -> u16 {
                match self { $(Code::$variant => $num,)* }
            }

            /// The severity the checker gives this code.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }

            /// A one-line title, used as the heading of the code's documentation page.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title,)* }
            }
        }
    };
}

codes! {
    YamlSyntax = 1, Error, "YAML syntax error";
    InputTooLarge = 2, Error, "playbook file too large";
    NestingTooDeep = 3, Error, "nesting too deep";
    AliasLimit = 4, Error, "too many alias expansions";
    DuplicateKey = 5, Error, "duplicate key";
    MultipleDocuments = 6, Error, "more than one YAML document";
    EmptyDocument = 7, Error, "empty playbook";
    UnknownKey = 10, Error, "unknown key";
    WrongType = 11, Error, "wrong type";
    MissingKey = 12, Error, "missing required key";
    InvalidValue = 13, Error, "value not allowed";
    BadDuration = 14, Error, "invalid duration";
    BadTimeOfDay = 15, Error, "invalid time of day";
    BadCron = 16, Error, "invalid cron expression";
    UnknownTimeZone = 17, Error, "unknown time zone";
    BadQuietHours = 18, Error, "invalid quiet hours";
    BadIdentifier = 19, Error, "invalid identifier";
    TemplateSyntax = 20, Error, "template syntax error";
    ExpressionSyntax = 21, Error, "expression syntax error";
    UnknownVariable = 22, Error, "unknown template variable";
    DuplicateStepId = 30, Error, "duplicate step id";
    UnknownStep = 31, Error, "reference to an unknown step";
    UnreachableStep = 32, Warning, "unreachable step";
    LoopWithoutWait = 33, Error, "loop without a wait";
    MissingTimeout = 34, Error, "wait_for without a timeout";
    SplitPercentages = 35, Error, "split percentages do not add up to 100";
    StepKind = 36, Error, "step kind missing or ambiguous";
    NoSteps = 37, Error, "no steps";
    NoTriggers = 38, Error, "no triggers";
    ConflictingKeys = 39, Error, "conflicting keys";
    UnknownPlugin = 40, Error, "unknown plugin";
    UnknownAction = 41, Error, "unknown plugin action";
    UnknownParam = 42, Error, "unknown action parameter";
    MissingParam = 43, Error, "missing required action parameter";
    ParamType = 44, Error, "action parameter of the wrong type";
    UnknownEvent = 45, Error, "unknown event kind";
    CatalogSkipped = 46, Note, "plugin checks skipped";
    BadEventType = 47, Error, "malformed event or action name";
    ActionAudience = 48, Warning, "action reaches the wrong kind of recipient";
    TimeCriticalQuietHours = 49, Warning, "time-critical action under quiet hours";
    UnboundedAudience = 50, Warning, "scheduled trigger without an audience";
    ZeroDuration = 51, Error, "zero duration";
    SuspiciousDuration = 52, Warning, "suspiciously long duration";
    EventInScheduledRun = 53, Warning, "`event` used where no event exists";
    UnusedWindow = 54, Warning, "entry window has no effect";
    BadVersion = 55, Error, "invalid version";
    ErrorWithoutOnError = 56, Warning, "`error` used where no failure is handled";
    BadFlow = 57, Error, "invalid flow control";
    FlowConcurrencyNoEffect = 58, Warning, "flow concurrency above one run per subject";
    UnknownAccount = 59, Error, "unknown platform account";
    AccountPlugin = 60, Error, "account of another plugin";
}

impl Code {
    /// `SOP0010`.
    pub fn as_str(self) -> String {
        format!("SOP{:04}", self.number())
    }

    /// Where the code is explained, relative to the repository root.
    pub fn doc_path(self) -> String {
        format!("docs/errors/{}.md", self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SOP{:04}", self.number())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_sorted() {
        let numbers: Vec<u16> = Code::ALL.iter().map(|c| c.number()).collect();
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(numbers, sorted);
    }

    #[test]
    fn code_formats_with_four_digits() {
        assert_eq!(Code::UnknownKey.to_string(), "SOP0010");
        assert_eq!(Code::YamlSyntax.as_str(), "SOP0001");
    }
}
