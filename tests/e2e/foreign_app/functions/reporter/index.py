from typing import Any

import requests  # type: ignore[import-untyped]  # not in the asset, a layer or Lambda's runtime


def handler(event: Any, context: Any) -> str:
    return str(requests.__version__)
