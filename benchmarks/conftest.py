import pytest


@pytest.fixture(scope="session")
def ctx():
    from runtime.audio_io import load_audio
    from runtime.demo import DEMO_FACE, DEMO_SPEECH, asset
    from runtime.pipeline import Animator
    from runtime.prepare import load_face

    avatar = load_face(asset(DEMO_FACE))
    return {"audio": load_audio(asset(DEMO_SPEECH)), "animator": Animator("cpu"), "avatar": avatar,
            "renderer": avatar.renderer(256)}
