"""Publish a record the Python Kafka client cannot read back: its header name is not UTF-8.

Non-Python clients (librdkafka, the Java client) can write any bytes as a header name;
aiokafka's producer cannot, so this runs its pure-Python record builder (no C extensions)
with a header name whose encoding yields invalid UTF-8. Run as
`python -m tests.support.raw_records BOOTSTRAP TOPIC KEY VALUE`.
"""

import asyncio
import os
import sys

os.environ["AIOKAFKA_NO_EXTENSIONS"] = "1"  # before aiokafka is imported

from aiokafka import AIOKafkaProducer


class _NotUtf8(str):
    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"\xff\xfe-not-utf8"


async def main(bootstrap: str, topic: str, key: str, value: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, value.encode(), key=key.encode(), headers=[(_NotUtf8("h"), b"1")]
        )
    finally:
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
