//! What starts runs besides platform events: cron schedules, inactivity scans and manual
//! audiences. Producers only: they say who should be enrolled and why; `sop-runtime` enrolls.
