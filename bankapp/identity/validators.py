"""Reusable rules for who may sign up and which passwords are acceptable.

Each rule exists as a plain function (usable from the CLI or the API) and as a WTForms
validator that writes the normalised value back into the field, so a form that validates
already holds what is stored: a lower-cased email, an E.164 phone number.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from urllib.parse import urlsplit

import phonenumbers
from confusable_homoglyphs import categories, confusables
from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_app_context
from flask_babel import gettext
from wtforms.validators import StopValidation, ValidationError
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from bankapp.identity import breached, common_passwords
from bankapp.platform.formatting import bank_timezone

PASSWORD_MIN_LENGTH = 12
# NIST SP 800-63B: allow at least 64 characters and never truncate; 128 keeps argon2's work
# per request bounded while leaving room for pass-phrases.
PASSWORD_MAX_LENGTH = 128
# zxcvbn refuses inputs longer than 72 characters (its matching cost grows with length), so
# a longer pass-phrase is judged by its first 72 characters.
_ZXCVBN_INPUT_LIMIT = 72
MINIMUM_AGE_YEARS = 18

_COMMON_PASSWORDS = frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])
# Context words (ASVS 5.0 V6.1.2, V6.2.11): a password may not contain the software's name,
# the bank's name (BANK_NAME, each word of it) or the host's name (PUBLIC_URL), nor the
# user's first or last name, email address, or any part of it (split at . _ - + @). Words
# shorter than this are ignored: "Al" or "Li" would refuse too much.
CONTEXT_WORD_MIN_LENGTH = 4
SOFTWARE_NAME = "bankapp"
# Host-name labels that say nothing about this bank.
_GENERIC_LABELS = frozenset({"www", "com", "org", "net", "bank", "example"})


class InvalidInput(ValueError):
    """A user-facing message about one bad value."""


# ---------------------------------------------------------------- email


def fold_email(value) -> str:
    """An address as it is compared and stored: NFKC (a fullwidth "ａ" is "a"), trimmed,
    lower-cased. What the login and the look-ups use too, so both forms find one account."""
    return unicodedata.normalize("NFKC", value if isinstance(value, str) else "").strip().lower()


def normalize_email(value: str) -> str:
    """The syntactically checked, folded form of an email address; a look-alike is refused.

    email-validator checks the syntax and normalises to NFC (RFC 6532), but NFC keeps
    compatibility forms (fullwidth letters) and says nothing of scripts, so the address is
    folded with NFKC first and each part checked with confusable_homoglyphs (Unicode's
    confusables data): a part mixing scripts (a Cyrillic "а" among Latin letters), or written
    in another script only with letters that look Latin, is refused.
    """
    value = fold_email(value)
    if not value:
        raise InvalidInput(gettext("Enter your email address."))
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidInput(gettext("Enter a valid email address (%(why)s).", why=error)) from None
    normalized = result.normalized.lower()
    if len(normalized) > 254:
        raise InvalidInput(gettext("An email address can have at most 254 characters."))
    local_part, _, domain = normalized.rpartition("@")
    if any(_looks_like_another(part) for part in (local_part, *domain.split("."))):
        raise InvalidInput(gettext(
            "This address mixes letters of different alphabets, so it looks like another "
            "address. Type it with the letters of one alphabet."))
    return normalized


def _looks_like_another(part: str) -> bool:
    if confusables.is_mixed_script(part):
        return True
    # One other script, but every letter of it looks Latin ("асе" in Cyrillic is "ace").
    foreign = {ch for ch in part if categories.alias(ch) not in ("COMMON", "LATIN")}
    if not foreign:
        return False
    alike = confusables.is_confusable(part, greedy=True,
                                      preferred_aliases=["latin", "common"]) or []
    return foreign <= {found["character"] for found in alike}


# ---------------------------------------------------------------- password


def _words(text: str | None) -> set[str]:
    """``text`` lower-cased, whole and in parts split at spaces and . _ - + @."""
    text = (text or "").strip().lower()
    if not text:
        return set()
    parts = set(re.split(r"[\s._+@-]+", text)) | {text, re.sub(r"[\s._+@-]+", "", text)}
    return {part for part in parts if len(part) >= CONTEXT_WORD_MIN_LENGTH}


def bank_context_words() -> set[str]:
    """The words of this installation no password may contain: the software's and the
    bank's name, and the labels of its public host name (docs/configuration.md)."""
    words = {SOFTWARE_NAME}
    if has_app_context():
        words |= _words(current_app.config.get("BANK_NAME"))
        host = urlsplit(current_app.config.get("PUBLIC_URL") or "").hostname or ""
        words |= _words(host) - _GENERIC_LABELS - {host}
    return words


def context_words(email: str | None = None, names: tuple[str | None, ...] = ()) -> set[str]:
    """Every word a password of this user may not contain (their own and the bank's)."""
    words = bank_context_words() | _words(email)
    for name in names:
        words |= _words(name)
    return words


def password_problems(password: str, email: str | None = None,
                      names: tuple[str | None, ...] = ()) -> list[str]:
    """Why ``password`` is refused (empty when acceptable); the last item may be advice.

    ``email`` and ``names`` (first and last) are the user's: the password may not contain
    them. Checked in order, cheapest first; the online breach check, when it is on, last.
    """
    password = password or ""
    if len(password) < PASSWORD_MIN_LENGTH:
        return [gettext("Use at least %(count)s characters (a few unrelated words work well).",
                        count=PASSWORD_MIN_LENGTH)]
    if len(password) > PASSWORD_MAX_LENGTH:
        return [gettext("Use at most %(count)s characters.", count=PASSWORD_MAX_LENGTH)]
    if password.isdigit():
        return [gettext("A password cannot be only digits.")]
    lowered = password.lower()
    email = (email or "").strip().lower()
    if email and lowered == email:
        return [gettext("A password cannot be your email address.")]
    words = context_words(email, names)
    for word in sorted(words, key=len, reverse=True):
        if word in lowered:
            return [gettext("A password cannot contain your name, your email address or the "
                            "bank's name (“%(word)s”).", word=word)]
    if lowered in _COMMON_PASSWORDS or common_passwords.is_common(password):
        return [gettext("This is one of the most common passwords; choose another.")]
    estimate = zxcvbn(password[:_ZXCVBN_INPUT_LIMIT], user_inputs=sorted(words))
    if estimate["score"] == 0:
        feedback = estimate.get("feedback") or {}
        advice = [feedback.get("warning") or "", *(feedback.get("suggestions") or [])]
        return [gettext("This password is too easy to guess."), *[a for a in advice if a]]
    if breached.times_breached(password):
        return [gettext("This password has appeared in a data breach, so attackers try it; "
                        "choose another.")]
    return []


class StrongPassword:
    """WTForms validator for the password policy.

    The user's email and names, which the password may not contain, come from the form's
    ``email``, ``first_name`` and ``last_name`` fields (sign-up), or, when the form has none
    (reset, change), from ``form.account``, the user whose password it is.
    """

    def __call__(self, form, field):
        account = getattr(form, "account", None)

        def value(name: str) -> str | None:
            if name in form:
                return form[name].data
            return getattr(account, name, None)

        problems = password_problems(field.data or "", value("email"),
                                     (value("first_name"), value("last_name")))
        if problems:
            raise StopValidation(" ".join(problems))


# ---------------------------------------------------------------- phone


def normalize_phone(value: str) -> str:
    """An international phone number (``+`` and 8–15 digits) in E.164 form."""
    value = (value or "").strip()
    if not value.startswith("+"):
        raise InvalidInput(gettext(
            "Enter the number in international form, starting with + and the country code."))
    rest = value[1:]
    if any(not (ch.isdigit() or ch in " -.()") for ch in rest):
        raise InvalidInput(gettext(
            "A phone number can contain only digits, spaces, dashes and brackets."))
    digits = "".join(ch for ch in rest if ch.isdigit())
    if not 8 <= len(digits) <= 15:
        raise InvalidInput(gettext("A phone number has 8 to 15 digits after the +."))
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        raise InvalidInput(gettext("This is not a valid phone number.")) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(gettext("This is not a valid phone number for its country code."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ---------------------------------------------------------------- date of birth


def _today() -> date:
    """Today in the bank's time zone (the calendar a customer's birthday is counted in)."""

    if has_app_context():

        return datetime.now(bank_timezone()).date()
    return datetime.now().date()


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def check_date_of_birth(born: date, today: date | None = None) -> date:
    """``born`` when it is a plausible date of birth of an adult customer."""
    today = today or _today()
    if born >= today:
        raise InvalidInput(gettext("A date of birth must be in the past."))
    if born.year < 1900:
        raise InvalidInput(gettext("Enter your real date of birth."))
    if age_on(born, today) < MINIMUM_AGE_YEARS:
        raise InvalidInput(gettext("You must be at least %(years)s years old to open an account.",
                                   years=MINIMUM_AGE_YEARS))
    return born


# ---------------------------------------------------------------- WTForms adapters


class _Normalizing:
    """Run a normalising rule; store its result in the field or show its message."""

    rule = staticmethod(lambda value: value)

    def __call__(self, form, field):
        if field.data is None or field.data == "":
            return  # DataRequired reports an empty field
        try:
            field.data = self.rule(field.data)
        except InvalidInput as error:
            raise ValidationError(str(error)) from None


class ValidEmail(_Normalizing):
    rule = staticmethod(normalize_email)


class InternationalPhone(_Normalizing):
    rule = staticmethod(normalize_phone)


class AdultDateOfBirth(_Normalizing):
    rule = staticmethod(check_date_of_birth)
