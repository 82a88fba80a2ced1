"""Python clients of oasst's HTTP APIs, returning `oasst.protocol` models and raising `OasstApiError`."""

from oasst.client._http import OasstApiError
from oasst.client.collection import AsyncCollectionClient, CollectionClient
from oasst.client.inference import AsyncInferenceClient, InferenceApiError, InferenceClient

__all__ = [
    "AsyncCollectionClient",
    "AsyncInferenceClient",
    "CollectionClient",
    "InferenceApiError",
    "InferenceClient",
    "OasstApiError",
]
