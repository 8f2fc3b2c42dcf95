"""kombu's filesystem transport (the embedded default's broker) with a message file that appears whole.

kombu writes a message by creating `<time>_<uuid>.<queue>.msg` and then writing into it; a consumer polling the
folder can move and read the file in between, get an empty payload, and stop consuming with a JSON error: the job
then waits for the reconciler. Here the payload is written under a name no consumer picks up (a leading dot and a
`.part` suffix) and renamed into place, which is atomic within one folder.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"cannot add a message to {self.data_folder_out!r}: {exc}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
