"""A TensorBoard event file written record by record, in step with the run's JSONL logs.

Each record is flushed as it is written, so the file's size is always a record boundary: a
checkpoint records it beside the JSONL offsets and a resume cuts the file back there
(dreamer/rundir.py), so TensorBoard shows a resumed run's curves without a step twice or missing.
"""
from __future__ import annotations

import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter


class EventFile:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")
        self._records = RecordWriter(self._file)
        if self._file.tell() == 0:
            self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One event at `step` with a scalar per tag."""
        self._write(Event(wall_time=time.time(), step=int(step), summary=Summary(
            value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items()])))

    def image(self, tag: str, png: bytes, height: int, width: int, step: int) -> None:
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
        self._write(Event(wall_time=time.time(), step=int(step), summary=Summary(
            value=[Summary.Value(tag=tag, image=image)])))

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()

    def _write(self, event: Event) -> None:
        self._records.write(event.SerializeToString())
        self._records.flush()
