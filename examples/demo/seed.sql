-- Fake customers for the quick-start demo: every value is invented.
create table customers (
    id      int primary key,
    name    text not null,
    email   text,
    phone   text,
    card    text,
    plan    text,
    notes   text
);
insert into customers values
  (1, 'Ada Lovelace',   'ada@example.com',   '+44 20 7946 0958', '4111 1111 1111 1111', 'pro',  'prefers email; SSN on file 536-22-1847'),
  (2, 'Grace Hopper',   'grace@example.org', '(415) 555-0132',   '5500 0000 0000 0004', 'team', 'call after 5pm'),
  (3, 'Alan Turing',    'alan@example.net',  '+1 202 555 0199',  '4000 0566 5566 5556',  'free', 'refund sent to IBAN GB82 WEST 1234 5698 7654 32'),
  (4, 'Katherine Johnson', 'kj@example.com', '+1 757 555 0100',  '6011 0000 0000 0004', 'pro',  'no notes');
