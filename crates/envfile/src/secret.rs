//! Recognising secrets (to mask them) and placeholder values (to flag them).

/// Words that make a key secret when they appear as a whole `_`/`.`/`-`-separated word.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "TOKENS",
    "APIKEY",
    "PRIVATE",
    "CREDENTIAL",
    "CREDENTIALS",
    "CREDS",
    "AUTH",
    "SALT",
    "DSN",
    "PASSPHRASE",
    "COOKIE",
    "SIGNING",
    "HMAC",
    "JWT",
    "KEY",
];

/// Substrings that make a key secret wherever they appear (`DBPASSWORD`, `GITHUB_TOKEN`).
const SECRET_PARTS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "PRIVATEKEY",
];

/// Whether values of this key should never be shown: passwords, tokens, keys, credentials,
/// DSNs. Deliberately broad (`*_KEY` counts); masking too much is the safe mistake.
///
/// ```
/// use shipline_envfile::is_secret_key;
/// assert!(is_secret_key("POSTGRES_PASSWORD"));
/// assert!(is_secret_key("stripe_api_key"));
/// assert!(!is_secret_key("IMAGE_TAG"));
/// ```
pub fn is_secret_key(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    if upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| SECRET_WORDS.contains(&w))
    {
        return true;
    }
    let squashed: String = upper.chars().filter(char::is_ascii_alphanumeric).collect();
    SECRET_PARTS.iter().any(|p| squashed.contains(p))
}

/// Whether a value carries a secret whatever its key: a URL with a password
/// (`postgres://user:pw@host/db`) or a PEM private key.
pub fn is_secret_value(value: &str) -> bool {
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return true;
    }
    if let Some(i) = value.find("://") {
        let rest = &value[i + 3..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some(at) = authority.rfind('@') {
            return authority[..at].contains(':');
        }
    }
    false
}

/// Whether to mask a key's value.
pub fn should_mask(key: &str, value: &str) -> bool {
    is_secret_key(key) || is_secret_value(value)
}

/// Why a value looks like a placeholder that was never replaced, if it does. The reason
/// never quotes the value itself.
///
/// Obvious placeholders (`changeme`, `your-secret-key-here`, `REPLACE_WITH_...`, `<token>`,
/// `TODO`) count for every key; weak ones (`secret`, `password`, `0000...`, `xxxx...`) only for
/// secret keys.
pub fn placeholder_reason(key: &str, value: &str) -> Option<&'static str> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    let squashed: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
    if v.is_empty() {
        return None;
    }
    if squashed.starts_with("changeme")
        || squashed == "changeit"
        || squashed.starts_with("changethis")
    {
        return Some("a change-me placeholder");
    }
    if squashed.starts_with("replacewith")
        || squashed.starts_with("replaceme")
        || squashed.starts_with("fillmein")
    {
        return Some("a replace-with placeholder");
    }
    if squashed.starts_with("your")
        && (squashed.contains("secret")
            || squashed.contains("key")
            || squashed.contains("password")
            || squashed.contains("token")
            || squashed.ends_with("here"))
    {
        return Some("a your-... placeholder");
    }
    if (v.starts_with('<') && v.ends_with('>')) || (v.starts_with("{{") && v.ends_with("}}")) {
        return Some("an angle-bracket or template placeholder");
    }
    if squashed == "todo" || squashed == "tbd" || squashed == "fixme" {
        return Some("a to-do placeholder");
    }
    if !is_secret_key(key) {
        return None;
    }
    if matches!(
        squashed.as_str(),
        "secret"
            | "password"
            | "passwd"
            | "pass"
            | "token"
            | "test"
            | "example"
            | "default"
            | "admin"
            | "dummy"
            | "placeholder"
            | "123456"
            | "12345678"
    ) {
        return Some("a well-known default");
    }
    if v.len() >= 3
        && (v.chars().all(|c| c == '0')
            || v.chars().all(|c| c == 'x' || c == 'X')
            || v.chars().all(|c| c == '*'))
    {
        return Some("one character repeated (like 000... or xxx...)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for k in [
            "DB_PASSWORD",
            "GITHUB_TOKEN",
            "SECRET_KEY_BASE",
            "AWS_SECRET_ACCESS_KEY",
            "APP_KEY",
            "SENTRY_DSN",
            "dbpassword",
            "JWT_SIGNING",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "IMAGE_TAG",
            "PORT",
            "KEYBOARD_LAYOUT",
            "PASSENGER_COUNT",
            "TOKENIZER_MODE_X",
        ] {
            let expected = k == "TOKENIZER_MODE_X"; // substring TOKEN: masked, the safe side
            assert_eq!(is_secret_key(k), expected, "{k}");
        }
    }

    #[test]
    fn secret_values() {
        assert!(is_secret_value("postgres://u:pw@db:5432/x"));
        assert!(!is_secret_value("postgres://u@db:5432/x"));
        assert!(!is_secret_value("https://example.com/a@b:c"));
    }

    #[test]
    fn placeholders() {
        assert!(placeholder_reason("DB_PASSWORD", "changeme").is_some());
        assert!(placeholder_reason("SECRET_KEY", "your-secret-key-here").is_some());
        assert!(placeholder_reason("HOST", "REPLACE_WITH_HOST").is_some());
        assert!(placeholder_reason("API_TOKEN", "00000000").is_some());
        assert!(placeholder_reason("PORT", "0000").is_none());
        assert!(placeholder_reason("DB_PASSWORD", "s3cr3t-Value!").is_none());
    }
}
