//! The Douyin enterprise-account platform plugin.
