"""The kiosk web page (HTML, JavaScript, AudioWorklet, CSS), served from memory by ``toonsync serve``."""
