"""The outside world of alerts: signed webhook POSTs and Apprise notifications, behind SSRF checks.

A user chooses the URL, so before anything is sent its host is resolved and every address must be public (not
private, loopback, link-local, reserved or multicast); the webhook connection is then pinned to the checked address,
so a DNS answer that changes between the check and the connect (rebinding) cannot redirect it. Apprise opens its own
connections, so its host is checked just before each send, and it follows no redirect. ALERT_WEBHOOK_ALLOW_PRIVATE=1
lifts the check (tests).

Apprise is imported where it is used: a web worker needs it only when a channel is saved or tested, and importing it
at start-up was ~50 modules and 2 MiB of every worker's RSS (bench/README.md, "Web worker RSS").
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import ssl
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.util.ssl_match_hostname import CertificateError


class DeliveryError(Exception):
    """A send that did not succeed; `retryable` says whether trying again later may help."""

    retryable = False


class DeliveryRefused(DeliveryError):
    """Will never work as it is (private address, 4xx, invalid URL): fail at once."""


class DeliveryTransient(DeliveryError):
    """Timeout, connection error, 5xx: retry later."""

    retryable = True


def webhook_destination(url: str) -> str:
    """A webhook URL as the destination it names: scheme and host compared without case (RFC 3986), an explicit
    default port left out, the rest (path, query: the receiver's to interpret) as given."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    scheme = parts.scheme.lower()
    port = parts.port if parts.port not in (None, {"http": 80, "https": 443}.get(scheme)) else None
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    return parts._replace(scheme=scheme, netloc=netloc).geturl()


def apprise_destination(url: str) -> str:
    """An Apprise URL as the destination it names: the URL Apprise writes back for it (its options' defaults
    spelt out, a default port left out), with the options in one order, no trailing slash, and a host that is a
    domain name or an address in lower case (DNS names have no case). Most services put a token where a host would
    be (Telegram's bot, Discord's webhook id): one without a dot keeps its case. The URL as given when Apprise does
    not know it."""
    import apprise

    plugin = apprise.Apprise.instantiate(url.strip())
    if not plugin:
        return url
    parts = urlsplit(plugin.url(privacy=False))
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") else (hostport, "", "")
    if not colon:
        host, port = hostport, ""
    if "." in host or host.startswith("[") or host.lower() == "localhost":
        host = host.lower()
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    return parts._replace(netloc=netloc, path=parts.path.rstrip("/"), query=query).geturl()


def signature(*, secret: str, body: bytes) -> str:
    """The X-Tradingdash-Signature value: HMAC-SHA256 of the raw body, keyed with the channel's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_checked(host: str, port: int) -> list[str]:
    """The host's addresses, all of them allowed, or DeliveryRefused. A name that does not resolve is transient."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryTransient(f"Cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not settings.ALERT_WEBHOOK_ALLOW_PRIVATE:
        refused = [a for a in addresses if not _is_public(a)]
        if refused:
            raise DeliveryRefused(
                f"{host} resolves to a private or reserved address ({refused[0]}); refused."
            )
    return addresses


def check_url(url: str) -> None:
    """Validate a webhook URL when it is saved: http(s), a host, only public addresses (DeliveryError)."""
    _target(url)


def _target(url: str) -> tuple[str, str, int, list[str]]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DeliveryRefused(f"Invalid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryRefused("A webhook URL must be http:// or https:// with a host.")
    if parts.username or parts.password:
        raise DeliveryRefused("A webhook URL must not contain credentials; sign with the secret instead.")
    port = port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, resolve_checked(parts.hostname, port)


def webhook_post(*, url: str, secret: str, event_id: str, body: bytes) -> int:
    """POST the body, signed, to the first checked address of the URL's host; the status code when 2xx."""
    scheme, host, port, addresses = _target(url)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(connect=settings.ALERT_WEBHOOK_TIMEOUT, read=settings.ALERT_WEBHOOK_TIMEOUT)
    address = addresses[0]
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=settings.ALERT_WEBHOOK_CA_BUNDLE or certifi.where(),
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    headers = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        "User-Agent": "tradingdash-webhooks",
        "X-Tradingdash-Event-Id": event_id,
        "X-Tradingdash-Signature": signature(secret=secret, body=body),
    }
    try:
        response = pool.urlopen("POST", path, body=body, headers=headers, redirect=False, retries=False)
    except urllib3.exceptions.SSLError as exc:
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, ssl.SSLCertVerificationError | CertificateError):
            # An untrusted authority, another host's certificate, an expired one: the receiver's configuration,
            # like a 4xx, so trying again will not help.
            why = getattr(reason, "verify_message", None) or str(reason)
            raise DeliveryRefused(f"The TLS certificate of {host} could not be verified: {why}.") from exc
        raise DeliveryTransient(f"TLS error with {host}: {exc}"[:400]) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise DeliveryTransient(f"{type(exc).__name__}: {exc}"[:400]) from exc
    finally:
        pool.close()
    status = response.status
    if 200 <= status < 300:
        return status
    if status >= 500 or status in (408, 429):
        raise DeliveryTransient(f"HTTP {status} from {host}")
    raise DeliveryRefused(f"HTTP {status} from {host}")


def _apprise_for(url: str):
    """An Apprise notifier of the URL that follows no redirect (Apprise does by default): a public host answering
    3xx would send the notification on to any address, past the check made on the URL's own host."""
    import apprise

    notifier = apprise.Apprise(asset=apprise.AppriseAsset(http_redirects=False))
    if not notifier.add(url):
        raise DeliveryRefused("Not a URL Apprise understands (see its list of supported services).")
    if any(getattr(service, "redirects", False) for service in notifier):
        raise DeliveryRefused("An Apprise URL must not ask to follow redirects (redirect=yes): take it off.")
    return notifier


def apprise_check(url: str) -> None:
    """Validate an Apprise URL when it is saved (DeliveryError): a URL Apprise knows, following no redirect, not
    aimed at a private host."""
    _apprise_for(url)
    _apprise_host_check(url)


def _apprise_host_check(url: str) -> None:
    # Most Apprise URLs name a public service and put tokens where a host would be; those do not resolve (or
    # resolve to public addresses). Self-hosted targets (json://, ntfy://host, gotify://…) are checked like webhooks.
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return
    if host:
        try:
            resolve_checked(host, 443)
        except DeliveryTransient:
            return
        except DeliveryRefused:
            # Not named: an Apprise URL's "host" is often a token (a bot's, a webhook's), and this message is
            # stored in last_error and shown.
            raise DeliveryRefused(
                "The Apprise URL's host resolves to a private or reserved address; refused."
            ) from None


def apprise_send(*, url: str, title: str, body: str) -> None:
    """Send through Apprise (Telegram, e-mail, Slack, Discord, ntfy…); a failure is transient with its log line."""
    import apprise

    notifier = _apprise_for(url)
    _apprise_host_check(url)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        ok = notifier.notify(title=title, body=body)
    if not ok:
        lines = [line for line in captured.getvalue().splitlines() if line.strip()]
        raise DeliveryTransient((lines[-1] if lines else "Apprise could not send the notification.")[-400:])
