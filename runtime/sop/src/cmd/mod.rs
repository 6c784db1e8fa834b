//! One module per subcommand.

pub mod cron;
pub mod preview;
pub mod run;
pub mod schema;
pub mod simulate;
pub mod validate;
