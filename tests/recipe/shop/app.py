#!/usr/bin/env python3
"""The shop's CDK app, as `cdk init app --language python` lays it out: its key in one stack,
its own bucket and function and two audit pipelines in another."""

import aws_cdk as cdk
from shop.keys_stack import KeysStack  # type: ignore[import-not-found]
from shop.shop_stack import ShopStack  # type: ignore[import-not-found]

app = cdk.App()
keys = KeysStack(app, "ShopKeys")
ShopStack(app, "ShopStack", audit_key=keys.audit_key)
app.synth()
