//! One module per subcommand.

pub mod cron;
pub mod schema;
pub mod validate;
