"""Each build step's options are a frozen dataclass of its own, filled from the parsed flags."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Options = TypeVar("Options", bound="DataclassInstance")


def from_args(cls: type[Options], args: argparse.Namespace, **given: object) -> Options:
    """`cls` from the flags whose names are its fields (or from `given`): a step sees its own options
    and no other's."""
    return cls(
        **{
            f.name: given[f.name] if f.name in given else getattr(args, f.name)
            for f in dataclasses.fields(cls)
        }
    )
