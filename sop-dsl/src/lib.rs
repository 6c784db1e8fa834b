//! The sop playbook language: model, loader, checker and diagnostics.
