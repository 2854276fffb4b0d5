#!/usr/bin/env python3
"""A consumer's app as `cdk init app --language python` lays it out: its own bucket and function,
a shared stack with a customer-managed key and a layer, and an AuditPipeline using that key."""

import aws_cdk as cdk
from myapp.myapp_stack import MyappStack  # type: ignore[import-not-found]
from myapp.shared_stack import SharedStack  # type: ignore[import-not-found]

app = cdk.App()
shared = SharedStack(app, "MyappShared")
MyappStack(app, "MyappStack", greeting_layer=shared.greeting_layer).add_dependency(shared)
app.synth()
