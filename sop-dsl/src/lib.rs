//! The sop playbook language: model, loader, checker and diagnostics.

pub mod cron;
