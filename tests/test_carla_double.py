"""The CARLA test double (tests/carla_double/) matches the compiled carla 0.9.16 module it stands in for.

Method names, parameter names and defaults are read from the compiled module's docstrings (boost.python writes
the real signature there), not from the ``.pyi`` stubs, which disagree (e.g. ``World.tick``'s default time-out is
0.0 in the module: "use the client's time-out", 10.0 in the stubs).
"""

from __future__ import annotations

import inspect
import queue
import re
import threading

import carla
import pytest

from . import carla_double as double

MIRRORS = {  # double class -> the carla class it stands in for
    double.Client: carla.Client,
    double.World: carla.World,
    double.BlueprintLibrary: carla.BlueprintLibrary,
    double.ActorBlueprint: carla.ActorBlueprint,
    double.TrafficManager: carla.TrafficManager,
    double.Actor: carla.Actor,
    double.Vehicle: carla.Vehicle,
    double.Sensor: carla.Sensor,
}
DATA = {double.Image: carla.Image, double.CollisionEvent: carla.CollisionEvent,
        double.LaneInvasionEvent: carla.LaneInvasionEvent, double.WorldSnapshot: carla.WorldSnapshot}
PARAM = re.compile(r"\((?P<type>[\w.]+)\)(?P<name>\w+)(?:=(?P<default>[^\s\[\],]+))?")


def compiled_signatures(function: object, name: str) -> list[list[tuple[str, object]]]:
    """Each overload's parameters after ``self`` as (name, default); ``inspect.Parameter.empty`` when required."""
    doc = inspect.getdoc(function) or ""
    overloads = []
    for line in doc.splitlines():
        if line.startswith(f"{name}("):
            params = [(m["name"], eval(m["default"], {"carla": carla}) if m["default"] else inspect.Parameter.empty)
                      for m in PARAM.finditer(line.split(") ->")[0] + ")")]
            overloads.append(params[1:])
    assert overloads, f"no signature in the docstring of {name}"
    return overloads


def double_signature(method: object) -> list[tuple[str, object]]:
    params = list(inspect.signature(method).parameters.values())[1:]  # type: ignore[arg-type]
    return [(p.name, p.default) for p in params]


def same(compiled: list[tuple[str, object]], fake: list[tuple[str, object]]) -> bool:
    """Names must match except boost's positional placeholders (argN); defaults must be equal."""
    return len(compiled) == len(fake) and all(
        (cn == fn or re.fullmatch(r"arg\d+", cn) is not None) and cd == fd
        for (cn, cd), (fn, fd) in zip(compiled, fake, strict=True))


def public_methods(cls: type) -> list[str]:
    return [n for n, v in vars(cls).items() if callable(v) and (not n.startswith("_") or n == "__init__")]


@pytest.mark.parametrize("fake_class", list(MIRRORS), ids=lambda c: c.__name__)
def test_double_methods_match_the_compiled_module(fake_class: type) -> None:
    real_class = MIRRORS[fake_class]
    for name in public_methods(fake_class):
        if fake_class is not double.Client and name == "__init__":
            continue  # the double's own constructor (carla's actors are made by the server, not by Python)
        if name in ("simulate", "data"):
            continue  # the double's server-side behaviour, not API
        assert hasattr(real_class, name), f"carla.{real_class.__name__} has no {name}"
        compiled = compiled_signatures(getattr(real_class, name), name)
        fake = double_signature(getattr(fake_class, name))
        assert any(same(c, fake) for c in compiled), f"{fake_class.__name__}.{name}{fake} vs carla: {compiled}"


@pytest.mark.parametrize("fake_class", [*MIRRORS, *DATA], ids=lambda c: c.__name__)
def test_double_attributes_exist_in_the_compiled_module(fake_class: type) -> None:
    real_class = {**MIRRORS, **DATA}[fake_class]
    attributes = {"Image": ["frame", "width", "height", "raw_data"], "CollisionEvent": ["frame", "other_actor"],
                  "LaneInvasionEvent": ["frame", "crossed_lane_markings"], "ActorBlueprint": ["id"],
                  "WorldSnapshot": ["frame"],
                  "Actor": ["id", "type_id", "attributes", "is_alive", "parent"]}.get(fake_class.__name__, [])
    for name in attributes:
        assert hasattr(real_class, name), f"carla.{real_class.__name__} has no {name}"
    props = [n for n, v in vars(fake_class).items() if isinstance(v, property)]
    for name in props:
        assert isinstance(getattr(real_class, name, None), property), f"carla.{real_class.__name__}.{name}"


def test_the_checker_catches_a_wrong_default() -> None:
    compiled = compiled_signatures(carla.World.tick, "tick")
    assert compiled == [[("seconds", 0.0)]]  # the compiled module's default, not the stubs' 10.0
    assert not same(compiled[0], [("seconds", 10.0)])
    assert not same(compiled_signatures(carla.Client.__init__, "__init__")[0], [("host", "localhost"),
                                                                               ("port", 2000), ("worker_threads", 0)])


def test_is_listening_is_a_method_in_0_9_16() -> None:
    # the online docs call it a property; the compiled module has a method, and the env calls it
    assert callable(carla.Sensor.is_listening) and not isinstance(carla.Sensor.is_listening, property)


def test_sensor_data_arrives_on_another_thread_after_tick_returns() -> None:
    server = double.FakeServer(double.straight_map(), port=3990)
    world = double.Client(server.host, server.port).get_world()
    car = world.spawn_actor(world.get_blueprint_library().find("vehicle.audi.tt"), carla.Transform())
    camera_bp = world.get_blueprint_library().find("sensor.camera.rgb")
    camera_bp.set_attribute("image_size_x", "8")
    camera_bp.set_attribute("image_size_y", "4")
    camera = world.spawn_actor(camera_bp, carla.Transform(), attach_to=car)
    arrived: queue.Queue[tuple[int, str]] = queue.Queue()
    release = threading.Event()
    camera.listen(lambda image: (release.wait(5.0), arrived.put((image.frame, threading.current_thread().name))))
    frame = world.tick(1.0)  # returns although the callback is still blocked
    assert arrived.empty()
    release.set()
    assert arrived.get(timeout=5.0) == (frame, "carla-double-3990")
    camera.stop()


def test_get_actors_gives_fresh_objects_that_are_not_listening() -> None:
    # as in carla 0.9.16: listening is a property of the Python object that called listen()
    server = double.FakeServer(double.straight_map(), port=3991)
    world = double.Client(server.host, server.port).get_world()
    car = world.spawn_actor(world.get_blueprint_library().find("vehicle.audi.tt"), carla.Transform())
    sensor = world.spawn_actor(world.get_blueprint_library().find("sensor.other.collision"), carla.Transform(),
                               attach_to=car)
    sensor.listen(lambda event: None)
    fresh = next(a for a in world.get_actors() if a.id == sensor.id)
    assert fresh is not sensor and not fresh.is_listening() and sensor.is_listening()
    fresh.stop()  # stops nothing
    assert sensor.is_listening()
    client = double.Client(server.host, server.port)
    with pytest.raises(AssertionError, match="destroyed while listening"):
        client.apply_batch_sync([carla.command.DestroyActor(sensor.id)])
