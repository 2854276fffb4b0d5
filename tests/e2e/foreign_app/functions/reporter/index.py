from typing import Any

import requests  # not in the asset, a layer or Lambda's runtime


def handler(event: Any, context: Any) -> str:
    return requests.__name__
