"""WeChat's message signatures and encryption, shared by Official Accounts and WeCom.

As WeChat documents its callback protocol (the scheme wechatpy implements too):
- the URL signature is the SHA-1 of the sorted, concatenated token, timestamp and nonce;
- in safe mode the message signature adds the encrypted body to that list;
- the body is AES-256-CBC with the key Base64-decoded from the 43-character
  EncodingAESKey (plus "="), the IV the key's first 16 bytes, PKCS#7 padding to 32
  bytes, over 16 random bytes + the message length (4 bytes, network order) + the
  message + the receiver's id (the Official Account's AppID, or WeCom's CorpID).
AES runs on the `cryptography` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from typing import Iterable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16


class SignatureError(Exception):
    """A signature that does not match: the request did not come from WeChat (403)."""


class CryptoError(Exception):
    """An encrypted body that cannot be read (400), or for another receiver (403)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(expected: str, parts: Iterable[str]) -> None:
    if not expected or not hmac.compare_digest(signature(*parts), expected.lower()):
        raise SignatureError("signature mismatch")


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte key from the 43-character EncodingAESKey."""
    if len(encoding_aes_key) != 43:
        raise ValueError("the EncodingAESKey has 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        raise ValueError("the EncodingAESKey is not Base64") from None
    if len(key) != 32:
        raise ValueError("the EncodingAESKey does not decode to 32 bytes")
    return key


class MessageCrypto:
    """Encrypts and decrypts callback bodies for one receiver (AppID or CorpID)."""

    def __init__(self, token: str, encoding_aes_key: str, receiver_id: str) -> None:
        self.token, self.receiver_id = token, receiver_id
        self.key = aes_key(encoding_aes_key)

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, plaintext: str, random16: bytes | None = None) -> str:
        body = plaintext.encode("utf-8")
        data = (
            (random16 or os.urandom(16))
            + struct.pack("!I", len(body))
            + body
            + self.receiver_id.encode("utf-8")
        )
        pad = BLOCK - len(data) % BLOCK
        data += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("the encrypted body is not Base64") from None
        if not raw or len(raw) % 16:
            raise CryptoError("the encrypted body is not whole AES blocks")
        decryptor = self._cipher().decryptor()
        data = decryptor.update(raw) + decryptor.finalize()
        pad = data[-1]
        if not 1 <= pad <= BLOCK or data[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        data = data[:-pad]
        if len(data) < 20:
            raise CryptoError("the decrypted body is too short")
        (length,) = struct.unpack("!I", data[16:20])
        if 20 + length > len(data):
            raise CryptoError("bad message length")
        message, receiver = data[20 : 20 + length], data[20 + length :]
        if not hmac.compare_digest(receiver, self.receiver_id.encode("utf-8")):
            raise CryptoError("the message is for another account", status=403)
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("the decrypted message is not UTF-8") from None

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self.token, timestamp, nonce, encrypted)

    def check(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        check_signature(msg_signature, (self.token, timestamp, nonce, encrypted))
