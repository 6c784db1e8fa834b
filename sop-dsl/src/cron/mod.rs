//! Cron schedules with time zones, with crontab's meaning.
