"""Identity: sign-up, login, second factors, passkeys, step-up, sessions and devices, profile.

Blueprint ``auth`` (its URLs and endpoint names are the ones the app always had)."""
