from sqlmodel import select

from models.geo import geo_cell
from models.tables import Club, Donor


async def test_a_donor_is_stored_and_read_back_with_its_club(db_sessionmaker):
    async with db_sessionmaker() as s:
        club = Club(name="CLB Hải Phòng", lat=20.86, lon=106.68)
        s.add(club)
        s.add(Donor(full_name="Nguyễn Văn A", phone="+84912345678", telegram_id=7_000_000_001,
                    abo="O", rh="-", lat=20.86, lon=106.68, geo_cell=geo_cell(20.86, 106.68)))
        await s.commit()
    async with db_sessionmaker() as s:
        donor = (await s.exec(select(Donor))).one()
        assert donor.telegram_id == 7_000_000_001  # beyond 32 bits: BigInteger works
        assert donor.created_at.tzinfo is not None
        assert (await s.exec(select(Club))).one().name == "CLB Hải Phòng"
