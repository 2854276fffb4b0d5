import os
from typing import Any

import boto3
from greeting import greet  # type: ignore[import-not-found]  # from the app's layer

s3 = boto3.client("s3")


def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    key = event["key"]
    s3.put_object(Bucket=os.environ["UPLOADS_BUCKET"], Key=key, Body=greet(key).encode())
    return {"bucket": os.environ["UPLOADS_BUCKET"], "key": key, "greeting": greet(key)}
