"""The production callback sink: publish to the gateway callbacks topic and await the ack."""

from aiokafka import AIOKafkaProducer

from contracts.codec import encode
from contracts.events.gateway import GatewayCallbackReceived
from contracts.topics import GATEWAY_CALLBACKS
from workers.gateway_simulator.callbacks import CallbackSink


def kafka_sink(producer: AIOKafkaProducer) -> CallbackSink:
    async def publish(event: GatewayCallbackReceived) -> None:
        # Keyed by order id (= correlation_id) so one order's events stay on one partition.
        # send_and_wait: a callback counts as sent only once the broker acknowledged it;
        # failures raise and the dispatcher retries.
        await producer.send_and_wait(
            GATEWAY_CALLBACKS.name,
            value=encode(event),
            key=event.correlation_id.encode(),
        )

    return publish
