from __future__ import annotations

from pydantic import Field

from shared.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    service_name: str = "intake"
    http_port: int = 8101
    # Dispatch owns the category catalogue; intake keeps a replica fetched from its API.
    dispatch_url: str = "http://localhost:8102"
    catalogue_refresh_seconds: float = Field(default=60.0, gt=0)
    # Abuse limit: case reports per user per minute (429 beyond it).
    report_rate_limit_per_minute: int = Field(default=30, ge=1)
    # Residents' own reports (Open311 without a token, 群众上报): per network address (a
    # carrier's NAT may put many phones behind one) and per device_id or e-mail, an hour.
    resident_reports_per_hour_per_client: int = Field(default=20, ge=1)
    resident_reports_per_hour_per_sender: int = Field(default=5, ge=1)
    # Casework (issue 4).
    grid_workers_may_whistle: bool = False  # 网格员可直接吹哨 (a community's choice)
    reopen_window_days: float = Field(default=7, gt=0)
    rating_link_days: float = Field(default=7, gt=0)
    duplicate_window_days: float = Field(default=7, gt=0)
    duplicate_radius_m: float = Field(default=200, gt=0)
    # Photos (issue 4): the largest photo kept (413 photo_too_large beyond it); the request
    # body limit is raised for this service so such a photo and its multipart envelope fit.
    photo_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # Decoded size: a photo whose header declares more pixels is refused (413) before a pixel
    # is decoded, so a small compressed file cannot cost much memory (a 170 KB PNG can
    # declare 12000×12000 = 144 megapixels, ~430 MB decoded). 40 MP is above any phone camera.
    photo_max_pixels: int = Field(default=40_000_000, ge=1_000_000)
    max_body_bytes: int = Field(default=6 * 1024 * 1024, ge=1024)
