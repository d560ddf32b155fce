#!/usr/bin/env python3
"""Publishes one update to a Mercure hub the way any language can: an HS256
JWT signed with the standard library (hmac, hashlib, base64, json) and one
form POST (urllib). Nothing outside the standard library.

  python3 mercure_publish.py --url http://127.0.0.1:3000/.well-known/mercure \
      --key SECRET --topic https://example.com/books/1 [--topic ALTERNATE ...] \
      [--data TEXT] [--private] [--id ID] [--type TYPE] [--retry MS]

The key may come from MERCURE_PUBLISHER_JWT_KEY instead of --key. The token
claims {"mercure": {"publish": ["*"]}} (--publish SELECTOR, repeatable,
narrows it) and expires in 60 s. Prints the id the hub answers and exits 0;
on a refusal prints "HTTP <status>: <body>" on stderr and exits 1.
"""
import argparse
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


def hs256_jwt(claims, key):
    """A compact JWS (RFC 7515) over claims, HS256 (RFC 7518 3.2)."""
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))
        for part in (header, claims)
    )
    signature = hmac.new(key.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def main():
    parser = argparse.ArgumentParser(description="Publish one update to a Mercure hub (standard library only).")
    parser.add_argument("--url", required=True, help="the hub's URL (…/.well-known/mercure)")
    parser.add_argument("--key", default=os.environ.get("MERCURE_PUBLISHER_JWT_KEY"), help="the HS256 publisher secret")
    parser.add_argument("--topic", action="append", required=True, help="a topic (repeat for alternates)")
    parser.add_argument("--data", default=None)
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--id", default=None)
    parser.add_argument("--type", default=None)
    parser.add_argument("--retry", type=int, default=None)
    parser.add_argument("--publish", action="append", default=None, help="the token's mercure.publish selectors (default *)")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if not args.key:
        parser.error("no key: pass --key or set MERCURE_PUBLISHER_JWT_KEY")

    token = hs256_jwt({"mercure": {"publish": args.publish or ["*"]}, "exp": int(time.time()) + 60}, args.key)
    fields = [("topic", topic) for topic in args.topic]
    if args.data is not None:
        fields.append(("data", args.data))
    if args.private:
        fields.append(("private", "on"))
    if args.id is not None:
        fields.append(("id", args.id))
    if args.type is not None:
        fields.append(("type", args.type))
    if args.retry is not None:
        fields.append(("retry", str(args.retry)))

    request = urllib.request.Request(
        args.url,
        data=urllib.parse.urlencode(fields).encode("ascii"),
        method="POST",
        headers={
            "Authorization": "Bearer " + token,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            print(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        print("HTTP %d: %s" % (err.code, err.read().decode("utf-8", "replace").strip()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
