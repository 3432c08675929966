"""Printing core: questionnaire → A4 form layout → personalised PDF batches, short codes, QR
codes, mailing labels, envelopes and delivery manifests. Pure: no Flask, no database."""

from .codes import (
    format_short_code,
    make_short_code,
    normalise_short_code,
    validate_short_code,
)
from .forms import Personalisation, render_blank_forms, render_form, render_forms
from .layout import CampaignInfo, FormLayout, keying_codes, prepare_layout
from .postal import (
    EnvelopeSize,
    MailingAddress,
    ManifestRow,
    manifest_rows,
    render_envelopes,
    render_labels,
    return_envelope_text,
    sort_by_address,
    sort_for_delivery,
    write_manifest_csv,
    write_manifest_xlsx,
)

__all__ = [
    "CampaignInfo",
    "EnvelopeSize",
    "FormLayout",
    "MailingAddress",
    "ManifestRow",
    "Personalisation",
    "format_short_code",
    "keying_codes",
    "make_short_code",
    "manifest_rows",
    "normalise_short_code",
    "prepare_layout",
    "render_blank_forms",
    "render_envelopes",
    "render_form",
    "render_forms",
    "render_labels",
    "return_envelope_text",
    "sort_by_address",
    "sort_for_delivery",
    "validate_short_code",
    "write_manifest_csv",
    "write_manifest_xlsx",
]
