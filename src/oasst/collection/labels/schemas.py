"""Response shapes of /text_labels that are not part of the shared protocol models."""

from __future__ import annotations

from oasst.protocol.collection import LabelDescription, WireModel


class ValidLabelsRead(WireModel):
    """`{"valid_labels": [...]}` of /text_labels/valid_labels and /text_labels/report_labels."""

    valid_labels: list[LabelDescription]
