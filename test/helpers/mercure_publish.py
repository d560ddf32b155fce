"""Publishes one Mercure update, as a Python service would: the standard
library only (urllib, hmac, hashlib, base64, json). Signs an HS256 publisher
token with the key in MERCURE_PUBLISHER_JWT_KEY and POSTs the form.

    python3 mercure_publish.py <hub url> <topic> <data> [private]

Prints the HTTP status and the body (the update's id) on one line.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def publisher_token(key):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"mercure": {"publish": ["*"]}, "exp": int(time.time()) + 60}
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def main():
    hub, topic, data = sys.argv[1], sys.argv[2], sys.argv[3]
    fields = [("topic", topic), ("data", data)]
    if len(sys.argv) > 4 and sys.argv[4] == "private":
        fields.append(("private", "on"))
    body = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(hub, data=body, method="POST", headers={
        "Authorization": "Bearer " + publisher_token(os.environ["MERCURE_PUBLISHER_JWT_KEY"]),
        "Content-Type": "application/x-www-form-urlencoded",
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        print(error.code, error.read().decode().strip())


if __name__ == "__main__":
    main()
