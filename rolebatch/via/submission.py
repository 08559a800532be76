"""Getting a pack of requests to the provider as one batch, exactly once.

    send      pack → intent → upload → create, each step journaled before the next
    adopt     after a crash: an intent never uploaded is uploaded again; an
              upload with no batch journaled is looked for at the provider (it
              may have been created, found by its tag) and created only if it
              is not there
    refused   the provider's queue is full: the pack's records go back to do,
              once an earlier batch has ended

What happens if the process dies right after each paid step:

    after "create" returned   the batch exists, the journal says "uploaded":
                              the next run finds it by tag and adopts it
"""

from __future__ import annotations

import anyio

from ..errors import AbortError, EndpointError
from ..providers.batch_api import BatchAPI, QueueFull, Unknown
from .journal import Entry, Journal

CREATE_TRIES = 3


class Submitter:
    """Sends packs as batches, for one output's journal.  ``waited_for`` is
    the run's set of batches it saw under way: a batch created is one."""

    def __init__(
        self, api: BatchAPI, journal: Journal, output_name: str, where: str, waited_for: set[str]
    ):
        self.api = api
        self.journal = journal
        self.output_name = output_name  # the batches' label at the provider
        self.where = where  # the endpoint, for messages
        self.waited_for = waited_for
        self.queue_full = False  # the provider refused to queue more until a batch ends

    async def send(self, tag: str, ids: list[str], pack: list[bytes]) -> bool:
        """Pack → intent → upload → create, each journaled.  False when the
        provider will not queue more for now."""
        entry = self.journal.new_entry(ids, tag)
        self.journal.write_requests(entry.tag, pack)
        self.journal.record(entry, "intent")
        file_id = await self.api.upload(f"{entry.tag}.jsonl", b"".join(pack))
        self.journal.record(entry, "uploaded", file_id=file_id)
        return await self._create(entry)

    async def adopt_or_create(self) -> None:
        """Finish what a crash interrupted (see the module's docstring)."""
        for entry in list(self.journal.entries.values()):
            if entry.step == "intent":
                path = self.journal.request_file(entry.tag)
                try:
                    data = path.read_bytes()
                except OSError:
                    self.journal.record(entry, "ended", note="request file lost before upload")
                    continue
                file_id = await self.api.upload(f"{entry.tag}.jsonl", data)
                self.journal.record(entry, "uploaded", file_id=file_id)
            if entry.step == "uploaded" and not self.queue_full:
                found = await self.api.find(
                    self.journal.submission(entry), self.journal.known_batches()
                )
                if found is not None:
                    self.journal.record(entry, "created", batch_id=found.id)
                else:
                    await self._create(entry)

    async def _create(self, entry: Entry) -> bool:
        assert entry.file_id is not None
        for _ in range(CREATE_TRIES):
            try:
                info = await self.api.create(self.journal.submission(entry), self.output_name)
            except QueueFull:
                return self._refused(entry)
            except Unknown:
                # It may exist: look before trying again.
                found = await self.api.find(
                    self.journal.submission(entry), self.journal.known_batches()
                )
                if found is not None:
                    info = found
                else:
                    await anyio.sleep(1.0)
                    continue
            self.journal.record(entry, "created", batch_id=info.id)
            self.waited_for.add(info.id)
            return True
        raise EndpointError(
            f"could not create a batch at {self.where} (three tries, the"
            " answers never came and no batch with our tag was found). Run the same command"
            " to try again: it looks for the batch first."
        )

    def _refused(self, entry: Entry) -> bool:
        """The provider's queue is full: the records go back to do, once an
        earlier batch has ended."""
        self.journal.record(entry, "ended", note="queue full")
        others = [e for e in self.journal.entries.values() if e.at_provider]
        if not others:
            raise AbortError(
                f"the provider will not queue even one batch of {len(entry.ids):,} requests"
                " (its enqueued-token limit): lower --batch-size and run the same command"
            )
        self.queue_full = True
        return False
