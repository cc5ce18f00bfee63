"""Sending mail: SMTP when IOTB_SMTP_HOST is set, otherwise one .eml file per mail in
IOTB_MAIL_DIR (default var/mail), which is what ``make run`` does."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from services.common.config import data_dir, env


class TemporaryFailure(Exception):
    pass


class PermanentFailure(Exception):
    pass


def build_message(
    sender: str, recipients: list[str], subject: str, text: str, html: str, key: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(
        idstring=key.replace("-", "")[:20], domain="iot-billing.local"
    )
    message["X-IOTB-Delivery"] = key
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class Mailer:
    def __init__(self) -> None:
        self.host = env("IOTB_SMTP_HOST")
        self.port = int(env("IOTB_SMTP_PORT", "25"))
        self.starttls = env("IOTB_SMTP_STARTTLS", "0") == "1"
        self.user = env("IOTB_SMTP_USER")
        self.password = env("IOTB_SMTP_PASSWORD")
        self.sender = env("IOTB_MAIL_FROM", "billing@iot-billing.local")
        self.folder = Path(env("IOTB_MAIL_DIR", str(data_dir() / "mail")))

    def send(self, message: EmailMessage) -> None:
        if not self.host:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{message['X-IOTB-Delivery']}.eml"
            path.write_bytes(bytes(message))
            return
        try:
            with smtplib.SMTP(self.host, self.port, timeout=15) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise TemporaryFailure(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"recipients refused: {list(exc.recipients)}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(str(exc)) from exc
