//! `sop simulate`: runs a playbook with the real engine, gate and triggers on a virtual clock
//! against a synthetic world, and reports what each step would do.
