"""The torch models: speech encoder, audio2motion, motion decoder, emotion, identity ResNet, stylizer, warp renderer."""
