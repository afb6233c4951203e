"""Keep the twin's state across restarts: one pickle of every moto backend in use, written atomically.

All backends go into one pickle so that objects they share (CloudFormation's resources are the EC2, IAM
and ELBv2 objects themselves) stay shared after a restore. A fresh deployment of the template costs moto
several seconds (its EC2 backend alone loads for ~4 s), so the state right after a deployment is also kept
in a cache shared by every stack of this user, keyed by the template, moto's version and the region:
the next stack starts from it in well under a second. Nothing here knows about HTTP.
"""

from __future__ import annotations

import copyreg
import functools
import hashlib
import logging
import os
import pickle
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from moto import __version__ as moto_version
from moto.core.base_backend import BackendDict

logger = logging.getLogger(__name__)


def _tags() -> defaultdict:
    """A picklable factory for SSM's per-type tag maps (moto uses a lambda, which pickle refuses)."""
    return defaultdict(dict)


def _picklable() -> None:
    """Swap the lambdas moto keeps in its backends for module-level factories."""
    for backends in BackendDict._instances:
        for _, _, backend in backends.iter_backends():
            tags = getattr(backend, "_resource_tags", None)
            if isinstance(tags, defaultdict) and tags.default_factory is not _tags:
                backend._resource_tags = defaultdict(_tags, tags)


def _private_key(key: Any) -> tuple:
    """Pickle an RSA private key (moto's SNS signs with one) as its PEM text."""
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return _load_private_key, (pem,)


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, None)


def _parameters(parameters: Any) -> tuple:
    """Pickle SSM's ParameterDict (a defaultdict whose constructor takes an account and a region)."""
    return _load_parameters, (parameters.account_id, parameters.region_name, dict(parameters),
                              {k: v for k, v in vars(parameters).items()})


def _load_parameters(account_id: str, region_name: str, items: dict, attributes: dict) -> Any:
    from moto.ssm.models import ParameterDict

    parameters = ParameterDict(account_id, region_name)
    parameters.update(items)
    vars(parameters).update(attributes)
    return parameters


@functools.cache
def _register_reducers() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from moto.ssm.models import ParameterDict

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # only its (native) type is wanted
    copyreg.pickle(type(key), _private_key)
    copyreg.pickle(ParameterDict, _parameters)


def dump() -> bytes:
    """Return every backend in use as one pickle."""
    _picklable()
    _register_reducers()
    state = {backends.service_name: dict(backends) for backends in BackendDict._instances}
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def load(data: bytes) -> list[str]:
    """Put the backends of a pickle from `dump` back into moto; return the services restored."""
    from moto.backends import get_backend

    state = pickle.loads(data)  # noqa: S301 - our own file, in a directory only this user can write
    for service, accounts in state.items():
        backends = get_backend(service)
        backends.clear()
        for account, account_backends in accounts.items():
            backends[account] = account_backends
        if backends not in BackendDict._instances:
            BackendDict._instances.append(backends)
    return sorted(state)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that a reader (or a crash) sees the old content or the new, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_path(template: bytes, region: str, extra: str = "") -> Path:
    """Where the state of a fresh deployment of this template is cached for every stack of this user."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sre-workshop"
    key = hashlib.sha256(template + f"|{moto_version}|{region}|{extra}".encode()).hexdigest()[:24]
    return root / f"twin-{key}.pickle"
