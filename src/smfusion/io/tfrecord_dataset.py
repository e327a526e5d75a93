"""Streaming torch ``IterableDataset`` over many TFRecord shards."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from torch.utils.data import IterableDataset, get_worker_info

from smfusion.io.tfrecord import list_shards, read_examples

__all__ = ["TFRecordDataset"]


class TFRecordDataset(IterableDataset):
    """Examples of many shards, streamed.

    With ``DataLoader(num_workers=k)`` worker ``i`` reads shards ``i, i+k, ...``
    (``torch.utils.data.get_worker_info``), so each record is read once.
    ``transform(example)`` maps a decoded example to what is yielded; ``keys``
    limits decoding to those features (plus ``required``).
    """

    def __init__(
        self,
        shards: str | Path | Sequence[str | Path],
        required: Sequence[str] = (),
        transform: Optional[Callable[[dict], object]] = None,
        check_crc: bool = True,
        keys: Optional[Iterable[str]] = None,
    ):
        super().__init__()
        if isinstance(shards, (str, Path)):
            self.shards = list_shards(shards)
        else:
            self.shards = [Path(p) for p in shards]
        self.required = tuple(required)
        self.transform = transform
        self.check_crc = check_crc
        self.keys = None if keys is None else tuple(keys)

    def my_shards(self) -> list[Path]:
        info = get_worker_info()
        if info is None:
            return list(self.shards)
        return self.shards[info.id :: info.num_workers]

    def __iter__(self):
        for shard in self.my_shards():
            for ex in read_examples(shard, self.required, self.check_crc, keys=self.keys):
                yield ex if self.transform is None else self.transform(ex)
