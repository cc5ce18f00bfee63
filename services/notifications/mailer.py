"""Sending mail: SMTP when IOTB_SMTP_HOST is set, otherwise one .eml file per mail in
IOTB_MAIL_DIR (default var/mail), which is what ``make run`` does.

  IOTB_SMTP_HOST, IOTB_SMTP_PORT (25), IOTB_SMTP_STARTTLS (0/1), IOTB_SMTP_USER,
  IOTB_SMTP_PASSWORD, IOTB_SMTP_TIMEOUT (15 s), IOTB_MAIL_FROM, IOTB_MAIL_DIR

SMTP answers decide what a failure is: 4xx and lost connections are temporary (tried
again later), 5xx is permanent (recorded, not retried).
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from services.common.config import data_dir, env


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


def build_message(
    sender: str,
    recipients: list[str],
    subject: str,
    text: str,
    html: str,
    key: str,
    attachments: list[dict] | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative mail (text and HTML), mixed with any attachments. The
    Message-ID derives from the delivery, so a mail sent again is recognisably the same."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Message-ID"] = f"<{key}@iot-billing.local>"
    message["X-IOTB-Delivery"] = key
    if date is not None:
        message["Date"] = format_datetime(date)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for item in attachments or []:
        maintype, _, subtype = item["content_type"].partition("/")
        message.add_attachment(
            base64.b64decode(item["content_b64"]),
            maintype=maintype,
            subtype=subtype,
            filename=item["filename"],
        )
    return message


class Mailer:
    """Hands a message to SMTP, or writes it to ``folder`` when no host is configured.
    Every setting defaults to its environment variable."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        starttls: bool | None = None,
        user: str | None = None,
        password: str | None = None,
        sender: str | None = None,
        folder: Path | str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.host = host if host is not None else env("IOTB_SMTP_HOST")
        self.port = port if port is not None else int(env("IOTB_SMTP_PORT", "25"))
        self.starttls = (
            starttls
            if starttls is not None
            else env("IOTB_SMTP_STARTTLS", "0").lower() in ("1", "true", "yes")
        )
        self.user = user if user is not None else env("IOTB_SMTP_USER")
        self.password = password if password is not None else env("IOTB_SMTP_PASSWORD")
        self.sender = sender or env("IOTB_MAIL_FROM", "billing@iot-billing.local")
        self._folder = Path(folder) if folder is not None else None
        self.timeout = timeout if timeout is not None else float(env("IOTB_SMTP_TIMEOUT", "15"))

    @property
    def folder(self) -> Path:
        # resolved late: IOTB_DATA_DIR may be set after the mailer is made
        return self._folder or Path(env("IOTB_MAIL_DIR", str(data_dir() / "mail")))

    @property
    def describe(self) -> str:
        return f"smtp://{self.host}:{self.port}" if self.host else str(self.folder)

    def send(self, message: EmailMessage, recipients: list[str] | None = None) -> None:
        """Send to ``recipients`` (the envelope), by default the addresses in To."""
        if not self.host:
            self._write(message)
            return
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(message, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = f"recipients refused: {exc.recipients!r}"
            if all(500 <= code < 600 for code in codes):
                raise PermanentFailure(error) from exc
            raise TemporaryFailure(error) from exc
        except smtplib.SMTPResponseException as exc:
            error = f"{exc.smtp_code} {exc.smtp_error!r}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(error) from exc
            raise TemporaryFailure(error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc

    def _write(self, message: EmailMessage) -> None:
        folder = self.folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{message['X-IOTB-Delivery']}.eml"
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(bytes(message))
            tmp.replace(path)  # a reader sees the whole mail or none
        except OSError as exc:
            raise TemporaryFailure(f"cannot write {folder}: {exc}") from exc
