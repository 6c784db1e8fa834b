//! WeCom callback signing and AES encryption (WXBizMsgCrypt).
