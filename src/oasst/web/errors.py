"""The core's errors as the pages word them: a text to translate for each error people meet in the web UI,
found by the error's identity (the collection core's error code; for the inference API, which has no codes,
its text), else the error's own English message. The JSON APIs answer as before."""

from __future__ import annotations

from oasst.errors import OasstError
from oasst.inference import service as inference_service
from oasst.inference.schemas import InferenceError, not_found
from oasst.protocol.collection import ErrorCode
from oasst.web.i18n import N_

BY_CODE: dict[ErrorCode, str] = {
    ErrorCode.TASK_NOT_FOUND: N_("This task does not exist or is not yours. Pick a new one."),
    ErrorCode.TASK_EXPIRED: N_("This task has expired. Pick a new one."),
    ErrorCode.TASK_ALREADY_DONE: N_("This task is finished already. Pick a new one."),
    ErrorCode.TASK_REQUESTED_TYPE_NOT_AVAILABLE: N_(
        "No task of this kind is available right now. Try another kind, or come back later."
    ),
    ErrorCode.TASK_TOO_MANY_PENDING: N_("You have too many open tasks. Finish or skip one of them first."),
    ErrorCode.TOO_MANY_REQUESTS: N_("Too many requests in a short time. Please wait a moment and try again."),
    ErrorCode.MESSAGE_NOT_FOUND: N_("This message does not exist or was deleted."),
    ErrorCode.USER_DISABLED: N_("Your account is disabled."),
    ErrorCode.ACCOUNT_DISPLAY_NAME_INVALID: N_(
        "A display name must not be empty or too long, and must not contain control characters."
    ),
}
BY_TEXT: dict[str, str] = {
    str(not_found("Chat").detail): N_("This chat does not exist or is not yours."),
    str(not_found("Message").detail): N_("This message does not exist or was deleted."),
    inference_service.COURSE_BUDGET_USED_UP: N_(
        "The token budget of your course is used up, so the assistant cannot answer any more. Ask your "
        "course staff for more."
    ),
    inference_service.COURSE_BUDGET_SHORT: N_(
        "Not enough of your course's token budget is left for another reply. Ask your course staff for more."
    ),
    inference_service.COURSE_KEY_INVALID: N_(
        "The course key you joined with no longer works: it was changed or its account was closed. Join "
        "again with the new key on your account page."
    ),
}


def core_text(error: OasstError | InferenceError) -> str:
    """What a page says about `error`, in English: translate it where it is shown."""
    if isinstance(error, OasstError):
        return BY_CODE.get(error.code, error.message)
    return BY_TEXT.get(str(error.detail), str(error.detail))
