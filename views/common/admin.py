"""Who may change this server: the admin gate in front of every action that alters it.

Installing weights, choosing a default detector, downloading weights, starting or cancelling
training and scans, finding faces, "Use this model": each writes files, starts processes or sends
requests on the server's behalf. Analysing clips and reading every page stay open to everyone.

The rule, first match wins:

1. **Used on the server itself** (the README's ``streamlit run app.py``, opened at
   http://localhost:8501): open. Local means the browser's TCP connection comes from this
   computer, the ``Host`` it asked for is a loopback name (so a web page elsewhere cannot reach the
   app through a name that resolves to 127.0.0.1), and no proxy header says it was forwarded. A
   reverse proxy on this computer that rewrites ``Host`` and adds no ``X-Forwarded-For`` would make
   every visitor look local: ``admin_localhost = false`` in ``secrets.toml`` turns this rule off.
   Without any request headers (an in-process run such as AppTest) there is no visitor: open.
2. **An identity provider is configured** (an ``[auth]`` section in ``secrets.toml``, Streamlit's
   ``st.login``): a signed-in user whose e-mail is in the ``admins`` list.
3. **Else an** ``admin_token`` **is configured** (16 characters or more): a session that typed it
   once (compared in constant time).
4. **Else**: changes are closed to visitors, and the message says how to open them.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st
from streamlit.errors import StreamlitDuplicateElementKey

log = logging.getLogger(__name__)

ADMIN_TOKEN_KEY = "dfi_admin_token"  # the token field (tests address it by this key)
ADMIN_SIGN_IN_KEY = "dfi_admin_sign_in"
ADMIN_SIGN_OUT_KEY = "dfi_admin_sign_out"
ADMIN_OK_KEY = "dfi_admin_ok"  # True once this session typed the right token
ADMIN_REFUSED_KEY = "dfi_admin_refused"  # a wrong token was typed: say so once
MIN_TOKEN_CHARS = 16
FORWARDING_HEADERS = ("x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip")


@dataclass(frozen=True)
class Access:
    """Whether this session may change the server; ``how`` (when not): "token", "sign_in",
    "not_admin" or "closed". ``who``: the signed-in e-mail, if any."""

    allowed: bool
    how: str = ""
    who: str = ""


def _secret(name: str):
    """A value of ``st.secrets`` (None when absent, or when there is no readable secrets file)."""
    try:
        return st.secrets.get(name)
    except Exception as exc:  # noqa: BLE001 - no secrets.toml raises; a broken one must not break pages
        if type(exc).__name__ != "StreamlitSecretNotFoundError":
            log.warning("secrets.toml could not be read: %s", exc)
        return None


def _loopback_host(host: str) -> bool:
    """Whether a ``Host`` header value (``name[:port]``, ``[v6]:port``) names this computer."""
    host = host.strip().lower()
    name = (
        host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    )
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_local_request(headers: Mapping[str, str], peer_is_loopback: bool) -> bool:
    """Whether a request with these headers, from this peer, is someone using the server itself.

    Args:
        headers: the request's HTTP headers (any case); empty when there is no HTTP request.
        peer_is_loopback: the TCP peer is 127.0.0.0/8 or ::1.
    """
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    if not lower:
        return True  # no HTTP request at all: an in-process run (AppTest, bare mode), no visitor
    if any(name in lower for name in FORWARDING_HEADERS):
        return False
    return peer_is_loopback and _loopback_host(lower.get("host", ""))


def request_is_local() -> bool:
    """:func:`is_local_request` for this session's browser connection."""
    if _secret("admin_localhost") is False:
        return False
    headers = dict(st.context.headers or {})
    # st.context.ip_address is the TCP peer, with 127.0.0.1 and ::1 reported as None; a server
    # bound to every interface (the README's start command) sees IPv4 loopback as ::ffff:127.0.0.1.
    return is_local_request(headers, peer_is_loopback=peer_is_loopback(st.context.ip_address))


def peer_is_loopback(ip: str | None) -> bool:
    """Whether a TCP peer address (None = Streamlit's loopback) is this computer, IPv4-mapped included."""
    if ip is None:
        return True
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # Python 3.11 does not call ::ffff:127.0.0.1 loopback
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _auth_configured() -> bool:
    auth = _secret("auth")
    return isinstance(auth, Mapping) and bool(auth)


def signed_in_email() -> str | None:
    """The e-mail of the user signed in through ``st.login`` ("" when the provider gave none), or
    None when nobody is signed in."""
    if not st.user.get("is_logged_in"):
        return None
    return str(st.user.get("email") or "")


def _token() -> str | None:
    token = _secret("admin_token")
    if not isinstance(token, str) or not token.strip():
        return None
    if len(token.strip()) < MIN_TOKEN_CHARS:
        log.warning("admin_token in secrets.toml is shorter than %d characters: ignored", MIN_TOKEN_CHARS)
        return None
    return token.strip()


def access() -> Access:
    """This session's access, by the rule in the module docstring (draws nothing)."""
    if request_is_local():
        return Access(True)
    if _auth_configured():
        email = signed_in_email()
        if email is None:
            return Access(False, "sign_in")
        admins = _secret("admins") or []
        listed = {str(a).strip().lower() for a in admins} if isinstance(admins, (list, tuple)) else set()
        return Access(True, who=email) if email.lower() in listed else Access(False, "not_admin", email)
    if _token() is not None:
        return Access(True) if st.session_state.get(ADMIN_OK_KEY) else Access(False, "token")
    return Access(False, "closed")


def is_admin() -> bool:
    """Whether this session may change the server (draws nothing; for callbacks and disabled buttons)."""
    return access().allowed


def _check_token() -> None:
    """Token field callback: unlock the session when the typed token is the configured one."""
    typed = str(st.session_state.get(ADMIN_TOKEN_KEY) or "").strip()
    st.session_state[ADMIN_TOKEN_KEY] = ""  # never kept in the field
    token = _token()
    if token is not None and typed and hmac.compare_digest(typed.encode(), token.encode()):
        st.session_state[ADMIN_OK_KEY] = True
    else:
        st.session_state[ADMIN_REFUSED_KEY] = True


def _sign_in_widgets(state: Access) -> None:
    if state.how == "token":
        if st.session_state.pop(ADMIN_REFUSED_KEY, False):
            st.error("That is not this server's admin token.")
        st.text_input("Admin token", type="password", key=ADMIN_TOKEN_KEY, on_change=_check_token)
    elif state.how == "sign_in":
        if st.button("Sign in", key=ADMIN_SIGN_IN_KEY, icon=":material/login:"):
            st.login()
    elif state.how == "not_admin" and st.button("Sign out", key=ADMIN_SIGN_OUT_KEY, icon=":material/logout:"):
        st.logout()


def require(action: str) -> bool:
    """Whether this session may ``action`` (words after "to", e.g. "start training"); when it may
    not, draws one plain line saying why and, where there is one, the way to sign in.

    Call it where the action's controls are drawn and disable or leave them out when it returns
    False; check :func:`is_admin` again in the action's callback. Several calls on one page draw
    the sign-in controls once.
    """
    state = access()
    if state.allowed:
        return True
    words = {
        "token": f"To {action}, enter this server's admin token.",
        "sign_in": f"To {action}, sign in as an admin of this server.",
        "not_admin": f"To {action}, sign in as an admin: {state.who or 'this account'} is not one on this server.",
        "closed": (
            f"Only whoever runs this server can {action}: changes are closed to visitors here "
            "(an admin_token or [auth] with admins in .streamlit/secrets.toml opens them)."
        ),
    }
    st.info(words[state.how], icon=":material/lock:")
    try:
        _sign_in_widgets(state)
    except StreamlitDuplicateElementKey:
        pass  # drawn already by an earlier call on this page: one token field is enough
    return False
