//! The WeCom (企业微信) platform plugin.
