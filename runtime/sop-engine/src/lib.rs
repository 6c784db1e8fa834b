//! The sop engine: turns playbooks and events into runs, and runs into actions.
